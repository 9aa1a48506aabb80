"""Model building, beside the server: ONNX export and quantisation, concept packs, training and offline
evaluation of the models the server loads. Needs torch + transformers for export and training
(``pip install 'opensearch-sesa[train]'``); the server itself never imports this package at start-up, only on
a cache miss that the config allows it to fill (``inference_server.model_store``,
``inference_server.runtime.concept_space``).
"""
