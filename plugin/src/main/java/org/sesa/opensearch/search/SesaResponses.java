package org.sesa.opensearch.search;

import org.apache.lucene.search.TotalHits;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.action.search.SearchResponseSections;
import org.opensearch.common.document.DocumentField;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.common.xcontent.support.XContentMapValues;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.index.seqno.SequenceNumbers;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.opensearch.search.aggregations.InternalAggregations;
import org.opensearch.search.internal.InternalSearchResponse;
import org.opensearch.search.profile.SearchProfileShardResults;
import org.sesa.opensearch.search.ext.SesaResponseExt;
import org.sesa.opensearch.search.query.QueryEncoding;
import org.sesa.opensearch.search.query.QueryEncoding.QueryConcept;
import org.sesa.opensearch.util.Texts;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds the final page of a SESA search: hit scores, {@code fields._sesa} explanations and the response. */
public final class SesaResponses {

    /** The per-hit explanation field. */
    public static final String EXPLANATION_FIELD = "_sesa";
    public static final int MAX_SHARED_CONCEPTS = 10;

    private SesaResponses() {}

    /**
     * Final score and rerank outcome of one ranked candidate.
     *
     * @param rerank  the raw cross-encoder score, or null when the hit was not reranked
     * @param blended the rerank score blended with the fused score (sesa_rerank with {@code rerank_weight < 1}),
     *                or null when no blending took place
     */
    public record Ranked(Candidate candidate, float score, Float rerank, Double blended) {
        /** Not blended. */
        public Ranked(Candidate candidate, float score, Float rerank) {
            this(candidate, score, rerank, null);
        }
    }

    /**
     * The page {@code [from, from + size)} of {@code ranking} as hits: {@code _score}, {@code fields._sesa} (when
     * {@code explain}) and the user's {@code _source}. Idempotent on the candidates' hits, so sesa_rerank can
     * build a new page from the same candidates.
     *
     * @param degraded reason to put in every hit's {@code _sesa.degraded}, or null
     */
    public static SearchHits page(SesaSearchPlan plan, List<Ranked> ranking, TotalHits total, String degraded) {
        int from = Math.min(plan.from(), ranking.size());
        int to = Math.min(ranking.size(), from + plan.size());
        SearchHit[] hits = new SearchHit[to - from];
        for (int i = from; i < to; i++) {
            Ranked r = ranking.get(i);
            Candidate c = r.candidate();
            SearchHit hit = c.hit();
            hit.score(r.score());
            if (plan.ext().explain()) {
                hit.setDocumentField(EXPLANATION_FIELD, new DocumentField(EXPLANATION_FIELD, List.of(explanation(plan, c, r.rerank(), r.blended(), degraded))));
            } else {
                hit.removeDocumentField(EXPLANATION_FIELD);
            }
            if (plan.sourceAugmented()) {
                Map<String, Object> visible = plan.visibleSource(c.source());
                hit.sourceRef(visible == null ? null : toBytes(visible));
            }
            if (plan.stripSeqNo()) { // asked for to match the branches' hits, not by the user
                hit.setSeqNo(SequenceNumbers.UNASSIGNED_SEQ_NO);
                hit.setPrimaryTerm(SequenceNumbers.UNASSIGNED_PRIMARY_TERM);
            }
            hits[i - from] = hit;
        }
        float max = Float.NaN;
        for (Ranked r : ranking) {
            if (Float.isNaN(max) || r.score() > max) {
                max = r.score();
            }
        }
        return new SearchHits(hits, total, max);
    }

    /**
     * {@code fields._sesa} of one hit: {@code rerank} is the raw cross-encoder score; {@code rerank_blended} (only
     * when {@code blended} is not null) the score it was ranked by after blending with the fused score.
     */
    public static Map<String, Object> explanation(SesaSearchPlan plan, Candidate c, Float rerank, Double blended, String degraded) {
        Map<String, Object> e = new LinkedHashMap<>();
        for (Branch b : Branch.values()) {
            e.put(b.key(), c.raw(b));
        }
        e.put("fused", c.fused());
        e.put("rerank", rerank);
        if (blended != null) {
            e.put("rerank_blended", blended);
        }
        List<String> chunkText = plan.chunkTextFields();
        // every source field the explanation reads, in one pass over the source (a chunked document's source holds
        // all its window vectors, which each pass would scan again)
        List<String> paths = new ArrayList<>(List.of(plan.names().concepts()));
        if (chunkText != null) {
            paths.addAll(Passages.paths(c, plan.names().chunks(), chunkText));
            paths.add(plan.names().coverage());
        }
        Map<String, Object> fields = c.sourceFields(paths);
        e.put("shared_concepts", plan.encoding() == null ? List.of() : sharedConcepts(plan.encoding(), fields, plan.names().concepts()));
        if (chunkText != null) {
            // the window the dense branch scored the document by, found again without a model call (see Passages)
            Passages.Passage passage = plan.encoding() == null
                ? null
                : Passages.of(c, plan.encoding().dense(), plan.names().chunks(), chunkText, fields);
            e.put("passage", passage == null ? null : passage.toMap());
            Float coverage = Passages.coverage(fields, plan.names().coverage());
            if (coverage != null) {
                e.put("coverage", coverage);
            }
        }
        if (degraded != null) {
            e.put("degraded", degraded);
        }
        return e;
    }

    /**
     * Concepts that both the query and the document carry, with {@code contribution = query_weight * idf * doc_weight}
     * ({@code idf} only where the concept branch looked it up, {@link QueryEncoding#idf}; the document's concept-branch
     * score is the sum of all contributions), strongest first, at most 10.
     * Document weights come from {@code <prefix>_concepts} in the fetched source; labels from the query's Encode.
     */
    public static List<Map<String, Object>> sharedConcepts(QueryEncoding encoding, Map<String, Object> source, String conceptsField) {
        if (encoding == null || source == null) {
            return List.of();
        }
        Object value = XContentMapValues.extractValue(conceptsField, source);
        if (!(value instanceof Map<?, ?> doc) || doc.isEmpty()) {
            return List.of();
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (QueryConcept q : encoding.concepts()) {
            if (doc.get(q.key()) instanceof Number n && n.doubleValue() > 0) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("key", q.key());
                m.put("label", q.label());
                m.put("query_weight", q.weight());
                m.put("doc_weight", n.doubleValue());
                if (encoding.idf() != null) {
                    m.put("idf", (double) encoding.idfOf(q));
                }
                m.put("contribution", (double) (q.weight() * encoding.idfOf(q)) * n.doubleValue());
                out.add(m);
            }
        }
        out.sort(
            Comparator.comparingDouble((Map<String, Object> m) -> -((Double) m.get("contribution")))
                .thenComparing(m -> (String) m.get("key"))
        );
        return out.size() > MAX_SHARED_CONCEPTS ? List.copyOf(out.subList(0, MAX_SHARED_CONCEPTS)) : out;
    }

    /** {@code base} with other hits, the SESA response extension and {@code extraTookMillis} more took time. */
    public static SearchResponse withHits(SearchResponse base, SearchHits hits, Map<String, Object> info, long extraTookMillis) {
        SearchResponseSections in = base.getInternalResponse();
        SearchProfileShardResults profile = base.getProfileResults() == null || base.getProfileResults().isEmpty()
            ? null
            : new SearchProfileShardResults(base.getProfileResults());
        List<org.opensearch.search.SearchExtBuilder> exts = SesaResponseExt.replace(in.getSearchExtBuilders(), new SesaResponseExt(info));
        SearchResponseSections sections;
        if (base.getAggregations() == null || base.getAggregations() instanceof InternalAggregations) {
            // InternalSearchResponse can travel between nodes; plain SearchResponseSections cannot be written.
            sections = new InternalSearchResponse(
                hits,
                (InternalAggregations) base.getAggregations(),
                base.getSuggest(),
                profile,
                base.isTimedOut(),
                base.isTerminatedEarly(),
                base.getNumReducePhases(),
                exts,
                in.getProcessorResult()
            );
        } else {
            sections = new SearchResponseSections(
                hits,
                base.getAggregations(),
                base.getSuggest(),
                base.isTimedOut(),
                base.isTerminatedEarly(),
                profile,
                base.getNumReducePhases(),
                exts,
                in.getProcessorResult()
            );
        }
        return new SearchResponse(
            sections,
            base.getScrollId(),
            base.getTotalShards(),
            base.getSuccessfulShards(),
            base.getSkippedShards(),
            base.getTook().millis() + Math.max(0, extraTookMillis),
            base.getPhaseTook(),
            base.getShardFailures(),
            base.getClusters(),
            base.pointInTimeId()
        );
    }

    /** Joins the string values of {@code fields} in {@code source} with {@code separator}; lists are flattened. */
    public static String text(Map<String, Object> source, List<String> fields, String separator) {
        if (source == null) {
            return "";
        }
        List<String> parts = new ArrayList<>();
        for (String f : fields) {
            collect(XContentMapValues.extractValue(f, source), parts);
        }
        return String.join(separator, parts);
    }

    private static void collect(Object v, List<String> out) {
        if (v instanceof String s) {
            if (Texts.isBlank(s) == false) {
                out.add(s);
            }
        } else if (v instanceof List<?> list) {
            for (Object o : list) {
                collect(o, out);
            }
        }
    }

    static BytesReference toBytes(Map<String, Object> source) {
        try (XContentBuilder b = XContentBuilder.builder(JsonXContent.jsonXContent)) {
            b.map(source);
            return BytesReference.bytes(b);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
