package org.sesa.opensearch.search.processor;

import org.opensearch.ExceptionsHelper;
import org.opensearch.OpenSearchStatusException;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.core.action.ActionListener;
import org.opensearch.core.rest.RestStatus;
import org.sesa.inference.v1.PassageScore;
import org.sesa.inference.v1.RerankOptions;
import org.sesa.inference.v1.RerankRequest;
import org.sesa.inference.v1.RerankResponse;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.index.EvidenceRecord;
import org.sesa.opensearch.search.Candidate;
import org.sesa.opensearch.search.SearchEvidence;
import org.sesa.opensearch.search.Passages;
import org.sesa.opensearch.search.SesaResponses;
import org.sesa.opensearch.search.SesaResponses.Ranked;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.query.QueryEncoding;
import org.sesa.opensearch.util.Texts;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * {@code sesa_rerank}: re-orders the top {@code top_n} of the fused ranking by the cross-encoder's Rerank scores
 * (one call, passages = the hit's {@code text_fields} joined with "\n", long passages chunked by the server).
 * The fused score stays in {@code _sesa.fused}; the raw rerank score goes to {@code _sesa.rerank}.
 *
 * <p><b>Blend.</b> With {@code rerank_weight} (or the request's {@code ext.sesa.rerank.weight}) {@code w} in
 * {@code [0, 1]}, the head hits that got a rerank score are ordered by
 * {@code w * minmax(rerank) + (1 - w) * minmax(fused)}, each min-max taken over those scored head hits only; a
 * component whose max equals its min normalizes to 0 for every hit, so it cannot decide the order. Ties keep the
 * fused order. A cross-encoder trained on little data ranks better interpolated with the first stage than on its
 * own, hence the blend. {@code w = 1} (the default) is the pure rerank order with the raw rerank score as
 * {@code _score}, as before the blend existed; with {@code w < 1} {@code _score} is the blended value, also given
 * as {@code _sesa.rerank_blended}. Head hits without a rerank score follow the scored ones in fused order, and the
 * hits after the head keep their place and fused score.
 *
 * <p><b>Domain.</b> When the served reranker ships a domain bank, the server says whether the query looks like
 * the queries it was trained and validated on ({@code RerankResponse.domain}). With {@code out_of_domain: "skip"}
 * (the default; the request's {@code ext.sesa.rerank.out_of_domain} overrides it) the server skips scoring such a
 * query and the fused order stands, with {@code ext.sesa.rerank.applied: false}, {@code skipped: "out_of_domain"}
 * and the similarity and threshold; this is not a degradation. {@code "rerank"} reranks every query.
 *
 * <p><b>Evidence.</b> Rerank is an extra signal: it earns its place with evidence measured on the collection it is
 * used on. When the indices the candidates come from share an evidence record ({@link SearchEvidence}, resolved by
 * {@code sesa_fuse}) that says {@code rerank.enabled: true}, the head is reranked, blended with the record's
 * {@code rerank.weight} unless the request sets {@code weight}. Without such a record (none, mixed, invalid), or
 * when it says {@code enabled: false}, {@code without_evidence: "skip"} (the default; the request's
 * {@code ext.sesa.rerank.without_evidence} overrides it) keeps the fused order with {@code ext.sesa.rerank.applied:
 * false}, {@code skipped: "no_evidence"} or {@code "evidence_against"}, and no Rerank call; this is not a degradation.
 * {@code "rerank"} reranks as before, with the request's or this processor's weight. {@code weight_source} says where
 * the weight came from. The domain check above applies after this gate.
 *
 * <p><b>Timing.</b> {@code ext.sesa.rerank.took_ms} is the Rerank call as this node saw it; {@code rerank_server}
 * ({@code queue_ms}, {@code compute_ms}, {@code tokenize_ms}, {@code total_ms}, {@code priority}) is the server's own
 * account of it, present whenever a call answered with a timing (also when it skipped an out-of-domain query) and
 * absent when no call was made, it failed, or the server is older than the field.
 *
 * <p>When the call fails or misses its {@code timeout}, the fused order is returned with
 * {@code _sesa.degraded} on every hit and {@code ext.sesa.degraded: true} with the reason; with {@code strict}
 * the search fails instead. Runs only when the request says {@code rerank} (or the pipeline sets
 * {@code by_default}).
 */
public final class SesaRerankProcessor extends AbstractSesaResponseProcessor {

    public static final String TYPE = "sesa_rerank";
    static final String SEPARATOR = "\n";

    /**
     * The text of the window the dense branch scored {@code c} by, when the search scored best windows and it is
     * known ({@link Passages}); null otherwise (the whole text is reranked then).
     */
    static String passageText(SesaSearchPlan plan, Candidate c, List<String> textFields) {
        if (plan.chunkTextFields() == null || plan.encoding() == null) {
            return null;
        }
        Passages.Passage p = Passages.of(c, plan.encoding().dense(), plan.names().chunks(), textFields);
        return p == null || p.text() == null || Texts.isBlank(p.text()) ? null : p.text();
    }

    private final List<String> textFields;
    private final int topN;
    private final TimeValue timeout;
    private final boolean strict;
    private final boolean byDefault;
    private final int maxChunks;
    private final double rerankWeight;
    private final boolean skipOutOfDomain;
    private final boolean skipWithoutEvidence;
    /** Whether a hit's best window ({@link #passageText}) is reranked instead of its text from the start. */
    private final boolean bestWindow;
    private final InferenceClient client;

    SesaRerankProcessor(
        String tag,
        String description,
        boolean ignoreFailure,
        List<String> textFields,
        int topN,
        TimeValue timeout,
        boolean strict,
        boolean byDefault,
        int maxChunks,
        double rerankWeight,
        boolean skipOutOfDomain,
        boolean skipWithoutEvidence,
        boolean bestWindow,
        InferenceClient client
    ) {
        super(TYPE, tag, description, ignoreFailure);
        this.textFields = List.copyOf(textFields);
        this.topN = topN;
        this.timeout = Objects.requireNonNull(timeout);
        this.strict = strict;
        this.byDefault = byDefault;
        this.maxChunks = maxChunks;
        this.rerankWeight = SesaSearchExt.checkRerankWeight(rerankWeight, SesaRerankProcessorFactory.RERANK_WEIGHT);
        this.skipOutOfDomain = skipOutOfDomain;
        this.skipWithoutEvidence = skipWithoutEvidence;
        this.bestWindow = bestWindow;
        this.client = Objects.requireNonNull(client);
    }

    /** {@code passage: "best"}: a hit's best window is reranked when known; {@code "first"}: its text from the start. */
    public boolean reranksBestWindow() {
        return bestWindow;
    }

    public int getTopN() {
        return topN;
    }

    public List<String> getTextFields() {
        return textFields;
    }

    public TimeValue getTimeout() {
        return timeout;
    }

    public boolean isStrict() {
        return strict;
    }

    public boolean isByDefault() {
        return byDefault;
    }

    /** The share of the cross-encoder score in the blend, in [0, 1]; 1 = pure rerank. */
    public double getRerankWeight() {
        return rerankWeight;
    }

    /** true: a query outside the reranker's domain keeps the fused order ({@code out_of_domain: "skip"}). */
    public boolean isSkipOutOfDomain() {
        return skipOutOfDomain;
    }

    /** true: without an evidence record saying rerank helps, the fused order stands ({@code without_evidence: "skip"}). */
    public boolean isSkipWithoutEvidence() {
        return skipWithoutEvidence;
    }

    @Override
    void process(SesaSearchPlan plan, SearchResponse response, ActionListener<SearchResponse> listener) {
        SesaSearchExt ext = plan.ext();
        boolean enabled = ext.rerank() != null ? ext.rerank() : byDefault;
        if (enabled == false) {
            listener.onResponse(response);
            return;
        }
        if (plan.ranking() == null) {
            listener.onFailure(new IllegalStateException("[" + TYPE + "] must come after [sesa_fuse] in the search pipeline"));
            return;
        }
        int n = ext.rerankTopN() != null ? ext.rerankTopN() : topN;
        TimeValue deadline = ext.rerankTimeout() != null ? ext.rerankTimeout() : timeout;
        boolean failHard = ext.rerankStrict() != null ? ext.rerankStrict() : strict;
        SearchEvidence evidence = plan.evidence();
        EvidenceRecord record = evidence.record();
        Boolean measured = record == null ? null : record.rerankEnabled(); // null: no record says anything on rerank
        boolean skipUnproven = ext.rerankSkipWithoutEvidence() != null ? ext.rerankSkipWithoutEvidence() : skipWithoutEvidence;
        if (Boolean.TRUE.equals(measured) == false && skipUnproven) {
            Map<String, Object> skipped = new LinkedHashMap<>();
            skipped.put("applied", false);
            skipped.put("skipped", measured == null ? "no_evidence" : "evidence_against");
            skipped.put("top_n", n);
            evidence.reportInto(skipped);
            respond(listener, () -> withRerank(plan, response, fusedOrder(plan), skipped, null, 0), listener::onFailure);
            return;
        }
        boolean weighed = Boolean.TRUE.equals(measured) && record.rerankWeight() != null;
        Weight w = new Weight(
            ext.rerankWeight() != null ? ext.rerankWeight() : weighed ? record.rerankWeight() : rerankWeight,
            SearchEvidence.source(ext.rerankWeight() != null, weighed)
        );
        boolean skipOod = ext.rerankSkipOutOfDomain() != null ? ext.rerankSkipOutOfDomain() : skipOutOfDomain;
        // the head's hits that only a side branch found still lack their text: one fetch for all of them
        plan.completeHead(Math.max(n, plan.from() + plan.size()), new ActionListener<>() {
            @Override
            public void onResponse(Void ignored) {
                rerankHead(plan, response, listener, n, deadline, failHard, w, skipOod);
            }

            @Override
            public void onFailure(Exception e) {
                fail(
                    plan,
                    response,
                    listener,
                    failHard,
                    new OpenSearchStatusException(
                        "fetching the hits that only the side branches found failed: " + e.getMessage(),
                        ExceptionsHelper.status(e),
                        e
                    )
                );
            }
        });
    }

    private void rerankHead(
        SesaSearchPlan plan,
        SearchResponse response,
        ActionListener<SearchResponse> listener,
        int n,
        TimeValue deadline,
        boolean failHard,
        Weight w,
        boolean skipOod
    ) {
        SesaSearchExt ext = plan.ext();
        List<Candidate> ranking = plan.ranking();
        List<Candidate> head = ranking.subList(0, Math.min(n, ranking.size()));
        // a search of a sesa_text field (ext.sesa.field) reranks that field's text
        List<String> textFields = plan.textFields() != null ? plan.textFields() : this.textFields;
        List<Integer> sent = new ArrayList<>();
        RerankRequest.Builder rr = RerankRequest.newBuilder()
            .setQuery(ext.queryText())
            .setOptions(RerankOptions.newBuilder().setChunkLongPassages(true).setMaxChunks(maxChunks).setSkipOutOfDomain(skipOod));
        for (int i = 0; i < head.size(); i++) {
            String text = bestWindow ? passageText(plan, head.get(i), textFields) : null;
            if (text == null) {
                text = SesaResponses.text(head.get(i).sourceFields(textFields), textFields, SEPARATOR);
            }
            if (Texts.isBlank(text) == false) {
                rr.addPassages(text);
                sent.add(i);
            }
        }
        if (head.isEmpty()) {
            listener.onResponse(response); // nothing to rerank
            return;
        }
        if (sent.isEmpty()) {
            fail(
                plan,
                response,
                listener,
                failHard,
                new OpenSearchStatusException("none of the top hits has text in " + textFields + " to rerank", RestStatus.BAD_REQUEST)
            );
            return;
        }
        long start = System.nanoTime();
        client.rerank(rr.build(), deadline, new ActionListener<>() {
            @Override
            public void onResponse(RerankResponse r) {
                long took = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                respond(
                    listener,
                    () -> reranked(plan, response, head.size(), sent, r, took, n, w),
                    e -> fail(plan, response, listener, failHard, e)
                );
            }

            @Override
            public void onFailure(Exception e) {
                fail(plan, response, listener, failHard, e);
            }
        });
    }

    private SearchResponse reranked(
        SesaSearchPlan plan,
        SearchResponse response,
        int headSize,
        List<Integer> sent,
        RerankResponse r,
        long tookMillis,
        int n,
        Weight w
    ) {
        if (r.hasDomain() && r.getDomain().getInDomain() == false && r.getScoresCount() == 0) {
            return outOfDomain(plan, response, r, tookMillis, n, w);
        }
        if (r.getScoresCount() != sent.size()) {
            throw new OpenSearchStatusException(
                "inference server returned " + r.getScoresCount() + " rerank scores for " + sent.size() + " passages",
                RestStatus.BAD_GATEWAY
            );
        }
        List<Candidate> ranking = plan.ranking();
        Float[] scores = new Float[headSize];
        int itemErrors = 0;
        for (int j = 0; j < sent.size(); j++) {
            PassageScore ps = r.getScores(j);
            if (ps.hasError() || Float.isFinite(ps.getScore()) == false) {
                itemErrors++;
            } else {
                scores[sent.get(j)] = ps.getScore();
            }
        }
        // w < 1: the scored head hits are ranked by the blend of the min-max normalized rerank and fused scores
        boolean blend = w.value() < 1.0;
        Double[] blended = new Double[headSize];
        if (blend) {
            double rMin = Double.POSITIVE_INFINITY, rMax = Double.NEGATIVE_INFINITY;
            double fMin = Double.POSITIVE_INFINITY, fMax = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < headSize; i++) {
                if (scores[i] != null) {
                    double f = ranking.get(i).fused();
                    rMin = Math.min(rMin, scores[i]);
                    rMax = Math.max(rMax, scores[i]);
                    fMin = Math.min(fMin, f);
                    fMax = Math.max(fMax, f);
                }
            }
            for (int i = 0; i < headSize; i++) {
                if (scores[i] != null) {
                    blended[i] = w.value() * minMax(scores[i], rMin, rMax) + (1 - w.value()) * minMax(ranking.get(i).fused(), fMin, fMax);
                }
            }
        }
        // Reranked hits first (by rerank or blended score, ties in fused order), then head hits without a score,
        // then the rest.
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < headSize; i++) {
            order.add(i);
        }
        order.sort(Comparator.comparingInt((Integer i) -> scores[i] == null ? 1 : 0).thenComparing((a, b) -> {
            if (scores[a] == null || scores[b] == null) {
                return Integer.compare(a, b);
            }
            int c = blend ? Double.compare(blended[b], blended[a]) : Float.compare(scores[b], scores[a]);
            return c != 0 ? c : Integer.compare(a, b);
        }));
        List<Ranked> ranked = new ArrayList<>(ranking.size());
        int done = 0;
        for (int i : order) {
            Candidate c = ranking.get(i);
            if (scores[i] == null) {
                ranked.add(new Ranked(c, (float) c.fused(), null));
                continue;
            }
            done++;
            ranked.add(blend ? new Ranked(c, blended[i].floatValue(), scores[i], blended[i]) : new Ranked(c, scores[i], scores[i]));
        }
        for (int i = headSize; i < ranking.size(); i++) {
            Candidate c = ranking.get(i);
            ranked.add(new Ranked(c, (float) c.fused(), null));
        }
        Map<String, Object> rerank = new LinkedHashMap<>();
        rerank.put("applied", true);
        rerank.put("top_n", n);
        w.reportInto(rerank);
        rerank.put("reranked", done);
        if (itemErrors > 0) {
            rerank.put("item_errors", itemErrors);
        }
        rerank.put("model", modelRef(r));
        rerank.put("took_ms", tookMillis);
        putServerTiming(rerank, r);
        if (r.hasDomain()) {
            rerank.put("domain", QueryEncoding.Domain.of(r.getDomain()).toMap());
        }
        plan.evidence().reportInto(rerank);
        return withRerank(plan, response, ranked, rerank, null, tookMillis);
    }

    /** The server skipped an out-of-domain query (as asked): the fused order stands; not a degradation. */
    private SearchResponse outOfDomain(SesaSearchPlan plan, SearchResponse response, RerankResponse r, long tookMillis, int n, Weight w) {
        Map<String, Object> rerank = new LinkedHashMap<>();
        rerank.put("applied", false);
        rerank.put("skipped", "out_of_domain");
        rerank.put("top_n", n);
        w.reportInto(rerank);
        rerank.put("model", modelRef(r));
        rerank.put("took_ms", tookMillis);
        putServerTiming(rerank, r);
        rerank.put("domain", QueryEncoding.Domain.of(r.getDomain()).toMap());
        plan.evidence().reportInto(rerank);
        return withRerank(plan, response, fusedOrder(plan), rerank, null, tookMillis);
    }

    /**
     * The response with {@code ranked} as its page and the plan's {@code ext.sesa} plus {@code rerank}. It is degraded
     * when the search already was (e.g. a hybrid search that fell back to BM25) or when {@code failure} (null: none)
     * says why the rerank itself did not happen; a failure adds to the reason.
     */
    private static SearchResponse withRerank(
        SesaSearchPlan plan,
        SearchResponse response,
        List<Ranked> ranked,
        Map<String, Object> rerank,
        String failure,
        long tookMillis
    ) {
        String reason = plan.degradedReason();
        if (failure != null) {
            reason = (reason == null ? "" : reason + "; ") + failure;
        }
        Map<String, Object> info = plan.responseInfo() == null ? new LinkedHashMap<>() : new LinkedHashMap<>(plan.responseInfo());
        info.put("rerank", rerank);
        info.put("degraded", reason != null);
        if (failure != null) {
            info.put("degraded_reason", reason);
        }
        return SesaResponses.withHits(response, SesaResponses.page(plan, ranked, response.getHits().getTotalHits(), reason), info, tookMillis);
    }

    /** Every hit of the fused ranking with its fused score, no rerank score. */
    private static List<Ranked> fusedOrder(SesaSearchPlan plan) {
        List<Ranked> ranked = new ArrayList<>(plan.ranking().size());
        for (Candidate c : plan.ranking()) {
            ranked.add(new Ranked(c, (float) c.fused(), null));
        }
        return ranked;
    }

    /**
     * {@code rerank_server}: the server's own timing of the Rerank call ({@code RerankResponse.timing}), next to
     * {@code took_ms}, the call as this node saw it; absent when the server sent none (older than the field).
     */
    private static void putServerTiming(Map<String, Object> rerank, RerankResponse r) {
        Map<String, Object> server = SesaSearchPlan.serverTiming(r.hasTiming(), r.getTiming());
        if (server != null) {
            rerank.put("rerank_server", server);
        }
    }

    /** {@code id@version} of the model that answered, or null when the server did not say. */
    private static String modelRef(RerankResponse r) {
        return r.hasModel() && r.getModel().getId().isEmpty() == false ? r.getModel().getId() + "@" + r.getModel().getVersion() : null;
    }

    /** strict: fail the search; otherwise the fused order, marked degraded. */
    private void fail(SesaSearchPlan plan, SearchResponse response, ActionListener<SearchResponse> listener, boolean failHard, Exception e) {
        if (failHard) {
            listener.onFailure(
                new OpenSearchStatusException("[" + TYPE + "] rerank failed and strict is set: " + e.getMessage(), ExceptionsHelper.status(e), e)
            );
            return;
        }
        Map<String, Object> rerank = new LinkedHashMap<>();
        rerank.put("applied", false);
        respond(listener, () -> withRerank(plan, response, fusedOrder(plan), rerank, "rerank failed: " + e.getMessage(), 0), inner -> {
            inner.addSuppressed(e);
            listener.onFailure(inner);
        });
    }

    /** The blend weight of one search and where it came from ({@link SearchEvidence#source}). */
    private record Weight(double value, String source) {
        void reportInto(Map<String, Object> rerank) {
            rerank.put("weight", value);
            rerank.put("weight_source", source);
        }
    }

    /** {@code (x - min) / (max - min)}; 0 when {@code max == min} (the component then cannot decide the order). */
    static double minMax(double x, double min, double max) {
        return max > min ? (x - min) / (max - min) : 0.0;
    }
}
