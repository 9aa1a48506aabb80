"""Training of the project's own models: the SESA concept head and the cross-encoder reranker.

Modules
-------
``data``         BEIR folders (corpus, queries, qrels) and self-supervised pairs mined from text
``embeddings``   pooled encoder embeddings through the server's own ONNX runtime, cached on disk
``bm25``         a small Lucene-formula BM25 in numpy/scipy (hard negatives, reference hybrid)
``retrieval``    exact dense / concept search, min-max fusion, ranx evaluation
``concept_head`` the SESA head training (frozen encoder, trained matrix W) and its artifact
``reranker``     cross-encoder training from all-MiniLM-L6-v2, ONNX export, int8 quantisation
``reranker_pipeline`` ``train reranker`` end to end (training cycles, warm restarts); the dev choice of the blend
                 weight; re-measurement
``blend_study``  offline comparison of ways to blend reranker and first-stage scores (weights from dev)
``explain``      shared-concept explanations and model-card material
``cli``          ``sesa-server train concepts|reranker|evaluate|report`` (``register(subparsers)``)

Training never changes the encoder: the dense vectors the server returns stay those of the
base model; only the concept head matrix (and the separate reranker) are learned.
"""

TRAINING_CACHE_ENV = "SESA_TRAINING_CACHE"
