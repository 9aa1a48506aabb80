package org.sesa.opensearch.search.processor;

import org.apache.lucene.search.TotalHits;
import org.opensearch.ExceptionsHelper;
import org.opensearch.OpenSearchStatusException;
import org.opensearch.action.search.MultiSearchResponse;
import org.opensearch.action.search.SearchResponse;
import org.opensearch.core.action.ActionListener;
import org.opensearch.search.SearchHit;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.Candidate;
import org.sesa.opensearch.search.DocKey;
import org.sesa.opensearch.search.QueryEncodingException;
import org.sesa.opensearch.search.SearchEvidence;
import org.sesa.opensearch.search.SesaResponses;
import org.sesa.opensearch.search.SesaResponses.Ranked;
import org.sesa.opensearch.search.SesaSearchPlan;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.index.EvidenceRecord;
import org.sesa.opensearch.index.IndexEvidenceLookup;
import org.sesa.opensearch.search.fusion.FusionSettings;
import org.sesa.opensearch.search.fusion.ScoreFusion;
import org.sesa.opensearch.search.fusion.ScoreFusion.BranchWindow;
import org.sesa.opensearch.search.fusion.ScoreFusion.Fused;
import org.sesa.opensearch.search.query.QueryEncoding;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * {@code sesa_fuse}: waits for the side branches that {@code sesa_query} started, fuses the windows of all
 * branches per query ({@link ScoreFusion}) and returns the page {@code [from, from + size)} of the fused ranking,
 * each hit with {@code fields._sesa}. Single-branch modes keep that branch's ranking and raw scores. The full
 * ranking stays in the plan for {@code sesa_rerank}. A search without {@code ext.sesa} passes through.
 *
 * <p><b>Concept domain.</b> When the server's concept head ships a domain bank, the query's Encode answer says
 * whether the query is like the queries the head (and the concept weight) was trained and validated on. With
 * {@code concepts_out_of_domain: "drop"} (the default) a hybrid search of a query outside that domain fuses with
 * the concept weight set to 0, so the ranking is the BM25 + dense one; {@code ext.sesa.fusion} says so
 * ({@code concepts_dropped}). The hits still carry their shared concepts as explanations. {@code "keep"} always
 * fuses with the configured weights.
 *
 * <p><b>Evidence.</b> Each fusion setting (technique, weights, rank_constant) is the request's {@code ext.sesa.fusion}
 * if it sets it, else the index evidence record's {@code fusion} if every index the candidates come from carries the
 * same record for the pipeline's target prefix ({@link SearchEvidence}, also kept in the plan for {@code sesa_rerank}),
 * else this processor's. {@code ext.sesa.fusion.weights_source} says which one gave the weights, and
 * {@code evidence} which record was used, with what was measured. The concept domain drop applies after this choice.
 */
public final class SesaFuseProcessor extends AbstractSesaResponseProcessor {

    public static final String TYPE = "sesa_fuse";

    private final FusionSettings settings;
    private final boolean dropConceptsOutOfDomain;
    private final IndexEvidenceLookup evidence;

    SesaFuseProcessor(
        String tag,
        String description,
        boolean ignoreFailure,
        FusionSettings settings,
        boolean dropConceptsOutOfDomain,
        IndexEvidenceLookup evidence
    ) {
        super(TYPE, tag, description, ignoreFailure);
        this.settings = settings;
        this.dropConceptsOutOfDomain = dropConceptsOutOfDomain;
        this.evidence = evidence;
    }

    @Override
    void process(SesaSearchPlan plan, SearchResponse response, ActionListener<SearchResponse> listener) {
        if (plan.otherResults() == null) {
            finish(plan, response, null, listener);
            return;
        }
        plan.otherResults().whenDone(new ActionListener<>() {
            @Override
            public void onResponse(MultiSearchResponse others) {
                finish(plan, response, others, listener);
            }

            @Override
            public void onFailure(Exception e) {
                if (e instanceof QueryEncodingException) {
                    listener.onFailure(e);
                    return;
                }
                listener.onFailure(
                    new OpenSearchStatusException("[" + TYPE + "] the side branch search failed: " + e.getMessage(), ExceptionsHelper.status(e), e)
                );
            }
        });
    }

    private void finish(SesaSearchPlan plan, SearchResponse main, MultiSearchResponse others, ActionListener<SearchResponse> listener) {
        Map<String, Object> info;
        try {
            info = rank(plan, main, others);
        } catch (Exception e) {
            listener.onFailure(e);
            return;
        }
        // the page's hits from lean branch searches still lack their source: one fetch for all of them
        plan.completeHead(plan.from() + plan.size(), new ActionListener<>() {
            @Override
            public void onResponse(Void ignored) {
                respond(listener, () -> page(plan, main, info), listener::onFailure);
            }

            @Override
            public void onFailure(Exception e) {
                listener.onFailure(
                    new OpenSearchStatusException(
                        "[" + TYPE + "] fetching the hits that only the side branches found failed: " + e.getMessage(),
                        ExceptionsHelper.status(e),
                        e
                    )
                );
            }
        });
    }

    /**
     * Fuses the windows into the full ranking (stored in the plan) and returns the response info without its
     * timing; the page is built once its partial hits are fetched.
     */
    Map<String, Object> rank(SesaSearchPlan plan, SearchResponse main, MultiSearchResponse others) {
        SesaSearchExt ext = plan.ext();
        Map<Branch, SearchHit[]> windows = new EnumMap<>(Branch.class);
        windows.put(plan.mainBranch(), main.getHits().getHits());
        for (int i = 0; i < plan.otherBranches().size(); i++) {
            Branch b = plan.otherBranches().get(i);
            MultiSearchResponse.Item item = others.getResponses()[i];
            if (item.isFailure()) {
                Exception f = item.getFailure();
                throw new OpenSearchStatusException(
                    "[" + TYPE + "] the " + b.key() + " branch failed: " + f.getMessage(),
                    ExceptionsHelper.status(f),
                    f
                );
            }
            windows.put(b, item.getResponse().getHits().getHits());
        }

        // Every document once; the first branch that returned it provides the hit (the main one has highlights).
        Map<DocKey, SearchHit> hits = new HashMap<>();
        Set<DocKey> partial = new HashSet<>();
        List<BranchWindow<DocKey>> fusionInput = new ArrayList<>();
        for (Branch b : plan.mode().branches()) {
            SearchHit[] w = windows.getOrDefault(b, new SearchHit[0]);
            boolean lean = b != plan.mainBranch() || plan.mainBranchLean();
            List<DocKey> keys = new ArrayList<>(w.length);
            float[] scores = new float[w.length];
            for (int r = 0; r < w.length; r++) {
                DocKey key = DocKey.of(w[r]);
                if (hits.putIfAbsent(key, w[r]) == null && lean) {
                    partial.add(key); // a lean branch's hit: id and score only
                }
                keys.add(key);
                scores[r] = w[r].getScore();
            }
            fusionInput.add(new BranchWindow<>(b, keys, scores));
        }

        // request > the candidate indices' shared evidence record > this pipeline, key by key
        SearchEvidence found = SearchEvidence.resolve(
            hits.keySet().stream().map(DocKey::index).collect(Collectors.toSet()),
            plan.names().prefix(),
            evidence
        );
        plan.evidence(found);
        EvidenceRecord record = found.record();
        FusionSettings base = record == null ? settings : settings.with(record.technique(), record.weights(), record.rankConstant());
        FusionSettings effective = base.with(ext.technique(), ext.weights(), ext.rankConstant());
        String weightsSource = SearchEvidence.source(ext.weights().isEmpty() == false, record != null && record.weights() != null);
        QueryEncoding.Domain conceptDomain = plan.encoding() == null ? null : plan.encoding().conceptDomain();
        boolean conceptsDropped = false;
        if (plan.mode().isHybrid()
            && dropConceptsOutOfDomain
            && conceptDomain != null
            && conceptDomain.inDomain() == false
            && effective.weights().getOrDefault(Branch.CONCEPTS, 0.0) > 0) {
            FusionSettings without = effective.with(null, Map.of(Branch.CONCEPTS, 0.0), null);
            // only when something is left to fuse (a request may weigh the concept branch alone)
            if (without.weights().values().stream().mapToDouble(Double::doubleValue).sum() > 0) {
                effective = without;
                conceptsDropped = true;
            }
        }
        List<Candidate> ranking = new ArrayList<>();
        if (plan.mode().isHybrid()) {
            for (Fused<DocKey> f : ScoreFusion.fuse(fusionInput, effective, DocKey::compareTo)) {
                ranking.add(new Candidate(f.key(), hits.get(f.key()), f.raw(), f.ranks(), f.fused(), partial.contains(f.key())));
            }
        } else {
            BranchWindow<DocKey> only = fusionInput.get(0);
            int b = only.branch().ordinal();
            for (int r = 0; r < only.keys().size(); r++) {
                Float[] raw = new Float[Branch.values().length];
                int[] ranks = new int[Branch.values().length];
                raw[b] = only.scores()[r];
                ranks[b] = r + 1;
                DocKey key = only.keys().get(r);
                ranking.add(new Candidate(key, hits.get(key), raw, ranks, only.scores()[r], partial.contains(key)));
            }
        }
        plan.ranking(ranking);

        Map<String, Object> info = new LinkedHashMap<>();
        info.put("mode", plan.mode().key());
        if (plan.mode().isHybrid()) {
            Map<String, Object> fusion = new LinkedHashMap<>();
            fusion.put("technique", effective.technique().key());
            Map<String, Object> w = new LinkedHashMap<>();
            for (Branch b : Branch.values()) {
                w.put(b.key(), effective.weights().get(b));
            }
            fusion.put("weights", w);
            fusion.put("weights_source", weightsSource);
            fusion.put("rank_constant", effective.rankConstant());
            fusion.put("min_range", effective.minRange());
            found.reportInto(fusion);
            if (conceptsDropped) {
                fusion.put("concepts_dropped", "out_of_domain");
            }
            if (conceptDomain != null) {
                fusion.put("concept_domain", conceptDomain.toMap());
            }
            info.put("fusion", fusion);
        }
        info.put("window_size", plan.window());
        info.put("candidates", ranking.size());
        Map<String, Object> branches = new LinkedHashMap<>();
        for (BranchWindow<DocKey> w : fusionInput) {
            Map<String, Object> stats = new LinkedHashMap<>();
            stats.put("returned", w.keys().size());
            Float max = null;
            Float min = null;
            for (float s : w.scores()) {
                max = max == null ? s : Math.max(max, s);
                min = min == null ? s : Math.min(min, s);
            }
            stats.put("max_score", max);
            stats.put("min_score", min);
            stats.put("queried", plan.queries().containsKey(w.branch()));
            branches.put(w.branch().key(), stats);
        }
        info.put("branches", branches);
        Map<String, Object> query = new LinkedHashMap<>();
        query.put("encoded", plan.encoding() != null);
        if (plan.encoding() != null) {
            query.put("cached", plan.encodingCached());
            query.put("concepts", plan.encoding().concepts().size());
            query.put("dense_model", plan.encoding().denseModel());
            query.put("concept_model", plan.encoding().conceptModel());
        }
        info.put("query", query);
        return info;
    }

    /** The fused page of the (completed) ranking; also stores the response info in the plan. */
    private static SearchResponse page(SesaSearchPlan plan, SearchResponse main, Map<String, Object> info) {
        List<Candidate> ranking = plan.ranking();
        List<Ranked> ranked = new ArrayList<>(ranking.size());
        for (Candidate c : ranking) {
            ranked.add(new Ranked(c, (float) c.fused(), null));
        }
        TotalHits total = main.getHits().getTotalHits();
        if (plan.mode().isHybrid()) { // the fused candidates (sesa_query does not count BM25 matches then)
            total = new TotalHits(ranking.size(), TotalHits.Relation.EQUAL_TO);
        }
        info.put("timing", plan.timing());
        if (plan.vanished() > 0) {
            info.put("vanished", plan.vanished()); // changed or deleted while the search ran
        }
        String degraded = plan.degradedReason();
        info.put("degraded", degraded != null);
        if (degraded != null) {
            info.put("degraded_reason", degraded);
        }
        plan.responseInfo(info);

        long elapsed = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - plan.startNanos());
        long extra = Math.max(0, elapsed - main.getTook().millis());
        return SesaResponses.withHits(main, SesaResponses.page(plan, ranked, total, degraded), info, extra);
    }

    public FusionSettings getSettings() {
        return settings;
    }

    /** true: a query outside the concept head's domain fuses without the concept branch. */
    public boolean isDropConceptsOutOfDomain() {
        return dropConceptsOutOfDomain;
    }
}
