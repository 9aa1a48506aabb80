package org.sesa.opensearch.index;

import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.fusion.FusionSettings;
import org.sesa.opensearch.search.fusion.FusionTechnique;

import java.util.EnumMap;
import java.util.Map;
import java.util.Set;

/**
 * One index's evidence record for one target prefix, {@code _meta.<index_meta_key>.<index_evidence_key>.<prefix>}
 * in its mapping, as {@code sesa tune} writes it after measuring on the collection's judged training queries:
 *
 * <pre>
 * { "version": 1,
 *   "fusion": { "technique": "min_max", "weights": { "bm25": 0.45, "dense": 0.45, "concepts": 0.1 }, "rank_constant": 60 },
 *   "rerank": { "enabled": true, "weight": 0.7 },
 *   "measured": { ... free-form report, passed through to the response as it is ... } }
 * </pre>
 *
 * {@code fusion}, each of its keys, {@code rerank.weight} and {@code measured} are optional (absent or null: the
 * record says nothing on it); a {@code rerank} section needs {@code enabled}. Unknown keys at the top level are
 * ignored, inside {@code fusion} and {@code rerank} they make the record invalid (a misspelt key must not pass for
 * "no evidence"). Immutable; two records are equal when every value is, {@code measured} included.
 *
 * @param technique    null: not set
 * @param weights      every branch (a branch the record leaves out weighs 0, as in {@code sesa_fuse}); null: not set
 * @param rankConstant null: not set
 * @param rerankEnabled whether the measured rerank earned its place; null: the record has no {@code rerank}
 * @param rerankWeight the blend weight measured with it, in [0, 1]; null: not set
 * @param measured     the free-form report (any JSON value), null when absent
 */
public record EvidenceRecord(
    FusionTechnique technique,
    Map<Branch, Double> weights,
    Integer rankConstant,
    Boolean rerankEnabled,
    Double rerankWeight,
    Object measured
) {

    /** The record format this plugin reads; another version is not understood, hence invalid. */
    public static final int VERSION = 1;

    public static final String VERSION_KEY = "version";
    public static final String FUSION = "fusion";
    public static final String RERANK = "rerank";
    public static final String ENABLED = "enabled";
    public static final String MEASURED = "measured";

    private static final Set<String> FUSION_KEYS = Set.of(SesaSearchExt.TECHNIQUE, SesaSearchExt.WEIGHTS, SesaSearchExt.RANK_CONSTANT);
    private static final Set<String> RERANK_KEYS = Set.of(ENABLED, SesaSearchExt.WEIGHT);

    /**
     * Reads and checks a record.
     *
     * @throws IllegalArgumentException naming the offending key (relative to the record), e.g.
     *     {@code [fusion.weights] must have at least one weight > 0}
     */
    public static EvidenceRecord parse(Object raw) {
        if (raw instanceof Map<?, ?> == false) {
            throw new IllegalArgumentException("the record must be an object, got [" + raw + "]");
        }
        Map<?, ?> m = (Map<?, ?>) raw;
        Object version = m.get(VERSION_KEY);
        if (!(version instanceof Number v) || v.doubleValue() != VERSION) {
            throw new IllegalArgumentException("[" + VERSION_KEY + "] must be " + VERSION + ", got [" + version + "]");
        }
        FusionTechnique technique = null;
        Map<Branch, Double> weights = null;
        Integer rankConstant = null;
        if (m.get(FUSION) != null) {
            Map<?, ?> fusion = section(m.get(FUSION), FUSION, FUSION_KEYS);
            Object t = fusion.get(SesaSearchExt.TECHNIQUE);
            if (t != null) {
                if (!(t instanceof String s)) {
                    throw new IllegalArgumentException("[fusion.technique] must be a string, got [" + t + "]");
                }
                technique = FusionTechnique.fromKey(s, "fusion.technique");
            }
            if (fusion.get(SesaSearchExt.WEIGHTS) != null) {
                Map<Branch, Double> given = SesaSearchExt.parseWeights(fusion.get(SesaSearchExt.WEIGHTS), "fusion.weights");
                weights = new EnumMap<>(Branch.class);
                double sum = 0;
                for (Branch b : Branch.values()) {
                    double w = given.getOrDefault(b, 0.0);
                    weights.put(b, w);
                    sum += w;
                }
                if (sum <= 0) {
                    throw new IllegalArgumentException("[fusion.weights] must have at least one weight > 0, got " + given);
                }
                weights = Map.copyOf(weights);
            }
            Object k = fusion.get(SesaSearchExt.RANK_CONSTANT);
            if (k != null) {
                if (!(k instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
                    throw new IllegalArgumentException("[fusion.rank_constant] must be an integer, got [" + k + "]");
                }
                // clamped into int first, so 1e12 is reported as out of range rather than wrapped into it
                rankConstant = (int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, n.doubleValue()));
                FusionSettings.checkRankConstant(rankConstant, "fusion.rank_constant");
            }
        }
        Boolean enabled = null;
        Double rerankWeight = null;
        if (m.get(RERANK) != null) {
            Map<?, ?> rerank = section(m.get(RERANK), RERANK, RERANK_KEYS);
            if (rerank.get(ENABLED) instanceof Boolean b) {
                enabled = b;
            } else {
                throw new IllegalArgumentException("[rerank.enabled] must be true or false, got [" + rerank.get(ENABLED) + "]");
            }
            Object w = rerank.get(SesaSearchExt.WEIGHT);
            if (w != null) {
                if (!(w instanceof Number n)) {
                    throw new IllegalArgumentException("[rerank.weight] must be a number between 0 and 1, got [" + w + "]");
                }
                rerankWeight = SesaSearchExt.checkRerankWeight(n.doubleValue(), "rerank.weight");
            }
        }
        return new EvidenceRecord(technique, weights, rankConstant, enabled, rerankWeight, m.get(MEASURED));
    }

    private static Map<?, ?> section(Object value, String what, Set<String> allowed) {
        if (value instanceof Map<?, ?> == false) {
            throw new IllegalArgumentException("[" + what + "] must be an object, got [" + value + "]");
        }
        Map<?, ?> m = (Map<?, ?>) value;
        for (Object key : m.keySet()) {
            if (allowed.contains(String.valueOf(key)) == false) {
                throw new IllegalArgumentException("[" + what + "] has unknown key [" + key + "]: expected " + allowed.stream().sorted().toList());
            }
        }
        return m;
    }
}
