package org.sesa.opensearch.search.query;

import java.util.Map;

/**
 * How rare each of a query's concepts is in the searched indices: a concept that fits every document explains
 * none of them. The concept branch multiplies a query concept's weight by its inverse document frequency, the
 * formula BM25 gives a term ({@code ln(1 + (N - df + 0.5) / (df + 0.5))}), so a document's concept score is
 * {@code sum over shared concepts of query_weight * idf * doc_weight}, and {@code _sesa.shared_concepts} reports the
 * same three factors. Statistics are the whole target's, over all its shards, read when the query is searched
 * ({@code SearchConceptStats}).
 *
 * @param docs     documents of the searched indices (top-level documents, windows not counted)
 * @param docFreq  concept key to the number of those documents that carry the concept
 */
public record ConceptIdf(long docs, Map<String, Long> docFreq) {

    public ConceptIdf {
        if (docs < 0) {
            throw new IllegalArgumentException("docs must be >= 0, got " + docs);
        }
        docFreq = Map.copyOf(docFreq);
    }

    /** BM25's inverse document frequency of a term found in {@code df} of {@code n} documents (always > 0). */
    public static double idf(long n, long df) {
        long d = Math.max(0, Math.min(df, n));
        return Math.log(1.0 + (n - d + 0.5) / (d + 0.5));
    }

    /** The idf of {@code key}; a concept no document carries gets the largest one. */
    public float of(String key) {
        Long df = docFreq.get(key);
        return (float) idf(docs, df == null ? 0 : df);
    }
}
