package org.sesa.opensearch.search.processor;

import org.junit.jupiter.api.BeforeEach;
import org.opensearch.action.search.MultiSearchRequest;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchRequest;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.search.SearchHit;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.pipeline.PipelineProcessingContext;
import org.sesa.inference.v1.Concept;
import org.sesa.inference.v1.DomainCheck;
import org.sesa.inference.v1.Embedding;
import org.sesa.opensearch.FakeInference;
import org.sesa.opensearch.search.SearchTestSupport;
import org.sesa.opensearch.index.IndexEvidenceLookup;
import org.sesa.opensearch.search.SesaQueryTestCase;
import org.sesa.opensearch.search.ext.SesaResponseExt;
import org.sesa.opensearch.search.ext.SesaSearchExt;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.sesa.opensearch.search.SearchTestSupport.hit;
import static org.sesa.opensearch.search.SearchTestSupport.msearch;
import static org.sesa.opensearch.search.SearchTestSupport.response;

/**
 * The harness of the tests that run the whole search pipeline on scripted branch results: sesa_query (real, against
 * the fake server), sesa_fuse and sesa_rerank made by their factories. Windows: bm25 [a 8, b 4], dense [c .9, a .8,
 * d .7], concepts [b .6, c .3]; min_max ({@link #HARNESS_TECHNIQUE}, set unless a test sets its own: the factory's
 * default is z_score) with the harness weights 0.4 / 0.4 / 0.2 ({@link #HARNESS_WEIGHTS}, likewise: the scenarios need a
 * scoring concept branch) gives a .6, c .4, b .2, d 0.
 */
abstract class SesaPipelineTestCase extends SesaQueryTestCase {

    static final String A = "{\"title\":\"A python\",\"text\":\"python sql\",\"sesa_concepts\":{\"c_py\":0.5,\"c_sql\":0.4,\"other\":0.9}}";
    static final String B = "{\"title\":\"B\",\"text\":\"sql\",\"sesa_concepts\":{\"c_sql\":0.9,\"c_etl\":0.1}}";
    static final String C = "{\"title\":\"C\",\"text\":\"python python\",\"sesa_concepts\":{\"c_py\":0.2}}";
    static final String D = "{\"title\":\"D\",\"text\":\"nothing\"}";

    /** The fake server's answers and the branch windows these tests fuse. */
    @BeforeEach
    void scriptTheServerAndTheBranches() {
        service.embedder = text -> Embedding.newBuilder()
            .addDense(1f)
            .addDense(0f)
            .addConcepts(Concept.newBuilder().setKey("c_py").setLabel("Python").setWeight(0.8f))
            .addConcepts(Concept.newBuilder().setKey("c_sql").setLabel("SQL").setWeight(0.5f))
            .addConcepts(Concept.newBuilder().setKey("c_etl").setLabel("ETL").setWeight(0.2f))
            .build();
        // "python" counts, and C gets a bonus, so rerank turns [a, c, b] into [c, a, b]
        service.rerankScorer = (q, p) -> FakeInference.occurrences("python", p) + (p.startsWith("C") ? 1 : 0);
        searcher.answer = this::sideBranches;
    }

    static final Map<String, String> SOURCES = Map.of("a", A, "b", B, "c", C, "d", D);

    /** Documents the backfill no longer finds (changed or deleted since the branch searches). */
    final java.util.Set<String> vanishedIds = new java.util.HashSet<>();

    /** When set, the backfill search's item fails with it. */
    volatile Exception failBackfill;

    /** Ids each backfill search asked for, in order. */
    final List<List<String>> backfilled = new java.util.ArrayList<>();

    /**
     * Like the node: a lean side branch (no {@code _source}) returns ids and scores only; the backfill search
     * (an ids query per index) returns the full hits of the ids it names.
     */
    private MultiSearchResponse sideBranches(MultiSearchRequest r) {
        Object[] out = new Object[r.requests().size()];
        for (int i = 0; i < out.length; i++) {
            SearchSourceBuilder source = r.requests().get(i).source();
            List<String> ids = askedIds(source.query());
            if (ids.isEmpty() == false) {
                backfilled.add(ids.stream().sorted().toList());
                String index = r.requests().get(i).indices()[0]; // one backfill search per index
                out[i] = failBackfill != null
                    ? failBackfill
                    : response(
                        ids.stream().filter(id -> vanishedIds.contains(id) == false).map(id -> hit(index, id, 1f, SOURCES.get(id))).toArray(SearchHit[]::new)
                    );
                continue;
            }
            boolean lean = source.fetchSource() != null && source.fetchSource().fetchSource() == false;
            java.util.function.Function<String, String> src = id -> lean ? null : SOURCES.get(id);
            // the knn stand-in parses into a wrapper query, the concepts branch is a bool
            boolean knn = source.query() instanceof org.opensearch.index.query.WrapperQueryBuilder;
            out[i] = knn
                ? response(hit("c", 0.9f, src.apply("c")), hit("a", 0.8f, src.apply("a")), hit("d", 0.7f, src.apply("d")))
                : response(hit("b", 0.6f, src.apply("b")), hit("c", 0.3f, src.apply("c")));
        }
        return msearch(out);
    }

    /** The ids whose {@code _seq_no} a backfill query (bool.filter [terms _seq_no]) asks for; empty for a branch. */
    static List<String> askedIds(org.opensearch.index.query.QueryBuilder q) {
        List<String> ids = new java.util.ArrayList<>();
        if (q instanceof org.opensearch.index.query.BoolQueryBuilder bool) {
            for (org.opensearch.index.query.QueryBuilder f : bool.filter()) {
                if (f instanceof org.opensearch.index.query.TermsQueryBuilder terms && terms.fieldName().equals("_seq_no")) {
                    for (String id : SOURCES.keySet()) {
                        if (terms.values().contains(SearchTestSupport.seqNo(id))) {
                            ids.add(id);
                        }
                    }
                }
            }
        }
        return ids;
    }

    static SearchResponse bm25Window() {
        return response(hit("a", 8f, A), hit("b", 4f, B));
    }

    /** Whether the target indices hold chunks ({@code <prefix>_chunks}); none unless a test says so. */
    org.sesa.opensearch.index.ChunkFieldLookup chunkFields = org.sesa.opensearch.index.ChunkFieldLookup.NONE;

    SesaQueryProcessor query() {
        return new SesaQueryProcessorFactory(
            fake::client,
            searcher,
            SearchTestSupport.registry(),
            org.sesa.opensearch.index.TargetModelsLookup.NONE,
            org.sesa.opensearch.index.SesaTextFieldLookup.NONE,
            chunkFields
        ).create(Map.of(), null, null, false, new HashMap<>(), null);
    }

    /** The indices' evidence records that {@link #fuse} reads; none unless a test sets them. */
    IndexEvidenceLookup evidence = IndexEvidenceLookup.NONE;

    static final Map<String, Object> HARNESS_WEIGHTS = Map.of("bm25", 0.4, "dense", 0.4, "concepts", 0.2);

    /** The technique the scenarios' numbers are computed with (not the factory's default, z_score). */
    static final String HARNESS_TECHNIQUE = "min_max";

    SesaFuseProcessor fuse(Object... kv) {
        Map<String, Object> cfg = config(kv);
        cfg.putIfAbsent("technique", HARNESS_TECHNIQUE);
        cfg.putIfAbsent("weights", new HashMap<>(HARNESS_WEIGHTS));
        return new SesaFuseProcessorFactory(evidence).create(Map.of(), null, null, false, cfg, null);
    }

    /** A {@code sesa_fuse} with the factory's own defaults (no technique nor weights in its config). */
    SesaFuseProcessor defaultFuse() {
        return new SesaFuseProcessorFactory(evidence).create(Map.of(), null, null, false, new HashMap<>(), null);
    }

    /**
     * A {@code sesa_rerank} with {@code without_evidence: "rerank"} unless {@code kv} sets it: the tests that use it
     * are about rerank itself, on indices without an evidence record; {@link #gatedRerank} keeps the default gate.
     */
    SesaRerankProcessor rerank(Object... kv) {
        Map<String, Object> cfg = config(kv);
        cfg.putIfAbsent(SesaRerankProcessorFactory.WITHOUT_EVIDENCE, SesaSearchExt.RERANK_ANYWAY);
        return new SesaRerankProcessorFactory(fake::client).create(Map.of(), null, null, false, cfg, null);
    }

    /** A {@code sesa_rerank} made from exactly {@code kv}, defaults included ({@code without_evidence: "skip"}). */
    SesaRerankProcessor gatedRerank(Object... kv) {
        return new SesaRerankProcessorFactory(fake::client).create(Map.of(), null, null, false, config(kv), null);
    }

    static Map<String, Object> config(Object... kv) {
        Map<String, Object> cfg = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            cfg.put((String) kv[i], kv[i + 1]);
        }
        return cfg;
    }

    /** Runs sesa_query on a request with this ext and source settings; returns the context. */
    PipelineProcessingContext plan(String extJson, SearchSourceBuilder source) throws Exception {
        SesaSearchExt ext = SesaSearchExt.fromMap(XContentHelper.convertToMap(JsonXContent.jsonXContent, extJson, true));
        source.ext(List.of(ext));
        PipelineProcessingContext ctx = new PipelineProcessingContext();
        CompletableFuture<SearchRequest> f = new CompletableFuture<>();
        query().processRequestAsync(new SearchRequest(new String[] { "idx" }, source), ctx, org.opensearch.core.action.ActionListener.wrap(f::complete, f::completeExceptionally));
        mainRequest = f.get(10, TimeUnit.SECONDS);
        return ctx;
    }

    /** The request sesa_query rewrote the last {@link #plan} into (the main branch's search). */
    SearchRequest mainRequest;

    static SearchResponse run(org.opensearch.search.pipeline.SearchResponseProcessor p, SearchResponse in, PipelineProcessingContext ctx) throws Exception {
        CompletableFuture<SearchResponse> f = new CompletableFuture<>();
        p.processResponseAsync(null, in, ctx, org.opensearch.core.action.ActionListener.wrap(f::complete, f::completeExceptionally));
        return f.get(10, TimeUnit.SECONDS);
    }

    static Exception failure(org.opensearch.search.pipeline.SearchResponseProcessor p, SearchResponse in, PipelineProcessingContext ctx) {
        return (Exception) assertThrows(ExecutionException.class, () -> run(p, in, ctx)).getCause();
    }

    static List<String> ids(SearchResponse r) {
        return java.util.Arrays.stream(r.getHits().getHits()).map(SearchHit::getId).toList();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> sesa(SearchHit h) {
        return h.field("_sesa") == null ? null : (Map<String, Object>) h.field("_sesa").getValue();
    }

    static Map<String, Object> ext(SearchResponse r) {
        return SesaResponseExt.find(r.getInternalResponse().getSearchExtBuilders()).info();
    }

    /** The default embedding, plus the server's concept-domain check of the query. */
    void conceptDomain(boolean inDomain) {
        java.util.function.Function<String, Embedding> plain = service.embedder;
        service.embedder = text -> plain.apply(text)
            .toBuilder()
            .setConceptDomain(DomainCheck.newBuilder().setInDomain(inDomain).setSimilarity(inDomain ? 0.5f : 0.1f).setThreshold(0.3f).setReference("scifact"))
            .build();
    }

    /** Rerank scores by title: d 10, b 8, c 3, a 0, the reverse of the fused order a .6, c .4, b .2, d 0. */
    void reverseRerankScores() {
        service.rerankScorer = (q, p) -> switch (p.charAt(0)) {
            case 'A' -> 0;
            case 'B' -> 8;
            case 'C' -> 3;
            case 'D' -> 10;
            default -> throw new AssertionError(p);
        };
    }

    SearchResponse rerankWith(String rerankExt, SesaRerankProcessor p) throws Exception {
        PipelineProcessingContext ctx = plan("{\"query_text\": \"q\", \"rerank\": " + rerankExt + "}", new SearchSourceBuilder());
        return run(p, run(fuse(), bm25Window(), ctx), ctx);
    }

    static float[] scores(SearchResponse r) {
        SearchHit[] hits = r.getHits().getHits();
        float[] out = new float[hits.length];
        for (int i = 0; i < hits.length; i++) {
            out[i] = hits[i].getScore();
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> rerankInfo(SearchResponse r) {
        return (Map<String, Object>) ext(r).get("rerank");
    }

    static List<Float> boxed(float[] a) {
        List<Float> out = new java.util.ArrayList<>();
        for (float f : a) {
            out.add(f);
        }
        return out;
    }
}
