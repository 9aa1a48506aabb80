"""Training of the project's own models: the SESA concept head and the cross-encoder reranker.

Modules
-------
``data``         a BEIR folder in memory (read by ``ir.beir``) and self-supervised pairs mined from text
``embeddings``   pooled encoder embeddings through the server's own ONNX runtime, cached on disk

The train/dev split of judged queries is ``ir.splits`` (shared with ``sesa tune-fusion``).
``bm25``         a small Lucene-formula BM25 in numpy/scipy (hard negatives, reference hybrid)
``retrieval``    exact dense / concept search on arrays; fusion and evaluation through ``ir.fusion`` / ``ir.metrics``
``concept_head_training`` the SESA head training (frozen encoder, trained matrix W) and its artifact
``concepts_pipeline`` ``train concepts`` end to end; ``domain_bank`` the query banks of the domain checks
``reranker``     cross-encoder training from all-MiniLM-L6-v2, ONNX export, int8 quantisation
``reranker_pipeline`` ``train reranker`` end to end (training cycles, warm restarts); the dev choice of the blend
                 weight; re-measurement
``explain``      shared-concept explanations and model-card material
``cli``          ``sesa-server train concepts|reranker|evaluate|report`` (``register(subparsers)``)

Training never changes the encoder: the dense vectors the server returns stay those of the
base model; only the concept head matrix (and the separate reranker) are learned.
"""

TRAINING_CACHE_ENV = "SESA_TRAINING_CACHE"
