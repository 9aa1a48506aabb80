package org.sesa.opensearch.search.query;

import org.opensearch.OpenSearchStatusException;
import org.opensearch.core.rest.RestStatus;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.DomainCheck;
import org.sesa.inference.v1.Embedding;
import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.ModelRef;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What one Encode call (TEXT_KIND_QUERY) said about a query text: its dense vector and its concepts, strongest
 * first. Immutable, so one instance can sit in the cache and serve many searches.
 *
 * @param dense        L2-normalised vector; empty when the server returned none
 * @param concepts     concepts with weight > 0, strongest first
 * @param denseModel   {@code id@version} of the dense model
 * @param conceptModel {@code id@version} of the concept model
 * @param conceptDomain whether the query is in the concept head's domain ({@code Embedding.concept_domain}); null
 *                      when the head ships no domain bank
 * @param idf          how rare each concept is in the searched indices ({@link #withIdf}); null: not looked up, every
 *                     concept scores with its weight alone
 */
public record QueryEncoding(float[] dense, List<QueryConcept> concepts, String denseModel, String conceptModel, Domain conceptDomain,
    ConceptIdf idf) {

    /** One concept of the query. */
    public record QueryConcept(String key, String label, float weight) {}

    /** A server's domain check of a query (see {@code DomainCheck} in the contract); the rerank step reports it too. */
    public record Domain(boolean inDomain, double similarity, double threshold, String reference) {

        /** The contract's message (from Encode's {@code concept_domain} or Rerank's {@code domain}). */
        public static Domain of(DomainCheck d) {
            return new Domain(d.getInDomain(), d.getSimilarity(), d.getThreshold(), d.getReference());
        }

        /** The check as the response's {@code ext.sesa} reports it. */
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("in_domain", inDomain);
            m.put("similarity", similarity);
            m.put("threshold", threshold);
            m.put("reference", reference);
            return m;
        }
    }

    public QueryEncoding {
        concepts = List.copyOf(concepts);
    }

    /** An encoding as Encode answered it (no idf yet). */
    public QueryEncoding(float[] dense, List<QueryConcept> concepts, String denseModel, String conceptModel, Domain conceptDomain) {
        this(dense, concepts, denseModel, conceptModel, conceptDomain, null);
    }

    /** An encoding without a domain check. */
    public QueryEncoding(float[] dense, List<QueryConcept> concepts, String denseModel, String conceptModel) {
        this(dense, concepts, denseModel, conceptModel, null, null);
    }

    /** This encoding with the concepts' idf in the searched indices (the cached encoding itself never holds one). */
    public QueryEncoding withIdf(ConceptIdf conceptIdf) {
        return new QueryEncoding(dense, concepts, denseModel, conceptModel, conceptDomain, conceptIdf);
    }

    /** The idf the concept branch multiplies {@code c}'s weight by: 1 when none was looked up. */
    public float idfOf(QueryConcept c) {
        return idf == null ? 1f : idf.of(c.key());
    }

    /**
     * The concepts as the concept branch scores them: each weight times its idf, strongest first (the order can
     * change: a rare concept outweighs a common one of the same weight).
     */
    public List<QueryConcept> scoringConcepts() {
        if (idf == null) {
            return concepts;
        }
        List<QueryConcept> out = new ArrayList<>(concepts.size());
        for (QueryConcept c : concepts) {
            out.add(new QueryConcept(c.key(), c.label(), c.weight() * idfOf(c)));
        }
        out.sort((a, b) -> Float.compare(b.weight(), a.weight()));
        return List.copyOf(out);
    }

    /** Concept key to concept, in the query's order. */
    public Map<String, QueryConcept> conceptsByKey() {
        Map<String, QueryConcept> m = new LinkedHashMap<>();
        for (QueryConcept c : concepts) {
            m.putIfAbsent(c.key(), c);
        }
        return Collections.unmodifiableMap(m);
    }

    /**
     * The encoding of the first (only) text of {@code response}.
     *
     * @throws OpenSearchStatusException 400 when the server rejected the text, 502 when the answer is malformed
     */
    public static QueryEncoding from(EncodeResponse response, String processorType) {
        if (response.getEmbeddingsCount() != 1) {
            throw new OpenSearchStatusException(
                "[" + processorType + "] inference server returned " + response.getEmbeddingsCount() + " embeddings for one query text",
                RestStatus.BAD_GATEWAY
            );
        }
        Embedding e = response.getEmbeddings(0);
        if (e.hasError()) {
            throw new OpenSearchStatusException(
                "[" + processorType + "] inference server rejected the query text: " + e.getError().getCode() + ": " + e.getError().getMessage(),
                RestStatus.BAD_REQUEST
            );
        }
        float[] dense = new float[e.getDenseCount()];
        for (int i = 0; i < dense.length; i++) {
            dense[i] = e.getDense(i);
        }
        List<QueryConcept> concepts = new ArrayList<>(e.getConceptsCount());
        for (Concept c : e.getConceptsList()) {
            if (c.getWeight() > 0 && Float.isFinite(c.getWeight()) && c.getKey().isEmpty() == false) {
                concepts.add(new QueryConcept(c.getKey(), c.getLabel(), c.getWeight()));
            }
        }
        concepts.sort((a, b) -> Float.compare(b.weight(), a.weight()));
        Domain domain = e.hasConceptDomain() ? Domain.of(e.getConceptDomain()) : null;
        return new QueryEncoding(dense, concepts, ref(response.getDenseModel()), ref(response.getConceptModel()), domain);
    }

    private static String ref(ModelRef r) {
        return r.getId().isEmpty() ? null : r.getId() + "@" + r.getVersion();
    }
}
