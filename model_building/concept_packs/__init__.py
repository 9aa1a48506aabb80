"""Concept packs: the vocabularies of knowledge bases and the concept-space artifact built from them.

A concept space is built from a vocabulary - one entry per concept of a knowledge base - by embedding each
concept's text with the serving encoder; the normalised embeddings become the rows of the zero-shot SESA head
(``inference_server.runtime.concept_head``). Building takes minutes on a small CPU for the 13,939 ESCO skills, so
the result is written once as a versioned artifact that the server loads at start-up
(``inference_server.runtime.concept_space``)::

    <dir>/matrix.npy       float32 [size, dim], L2-normalised rows
    <dir>/concepts.jsonl   one line per row: key, id, label, parent, description
    <dir>/manifest.json    name, version, size, dimension, sha256s, encoder, source, licence

Modules: ``vocabulary`` (the entry type and the JSONL format), ``esco`` (the built-in ``esco-skills`` pack and
the ESCO occupations), ``wordnet`` (the built-in ``wordnet-nouns`` pack), ``build`` (vocabulary -> artifact).
"""
