package org.sesa.opensearch.search.fusion;

import org.sesa.opensearch.search.Branch;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The fusion parameters of one search: the pipeline's {@code sesa_fuse} settings with the request's
 * {@code ext.sesa.fusion} applied on top. Immutable.
 *
 * @param technique    min_max, z_score or rrf
 * @param weights      a non-negative weight per branch (all three are always present)
 * @param rankConstant RRF's k (at least 1); rrf only
 * @param minRange     min_max only (z_score and rrf ignore it): a branch's normalisation range is at least {@code minRange * |max|} (0 to 1)
 */
public record FusionSettings(FusionTechnique technique, Map<Branch, Double> weights, int rankConstant, double minRange) {

    public static final int MIN_RANK_CONSTANT = 1;
    public static final int MAX_RANK_CONSTANT = 10_000;
    public static final double DEFAULT_MIN_RANGE = 0.05;

    public FusionSettings {
        Objects.requireNonNull(technique, "technique");
        EnumMap<Branch, Double> w = new EnumMap<>(Branch.class);
        for (Branch b : Branch.values()) {
            Double v = weights.get(b);
            if (v == null) {
                throw new IllegalArgumentException("missing fusion weight for [" + b.key() + "]");
            }
            checkWeight(v, "weights." + b.key());
            w.put(b, v);
        }
        weights = Map.copyOf(w);
        checkRankConstant(rankConstant, "rank_constant");
        if (Double.isFinite(minRange) == false || minRange < 0 || minRange > 1) {
            throw new IllegalArgumentException("[min_range] must be between 0 and 1, got [" + minRange + "]");
        }
    }

    public static void checkWeight(double v, String what) {
        if (Double.isFinite(v) == false || v < 0) {
            throw new IllegalArgumentException("[" + what + "] must be a finite number >= 0, got [" + v + "]");
        }
    }

    public static void checkRankConstant(int v, String what) {
        if (v < MIN_RANK_CONSTANT || v > MAX_RANK_CONSTANT) {
            throw new IllegalArgumentException(
                "[" + what + "] must be between " + MIN_RANK_CONSTANT + " and " + MAX_RANK_CONSTANT + ", got [" + v + "]"
            );
        }
    }

    /** This with the non-null parts of a request's overrides; weights are replaced per branch. */
    public FusionSettings with(FusionTechnique t, Map<Branch, Double> w, Integer k) {
        Map<Branch, Double> merged = new EnumMap<>(weights);
        if (w != null) {
            merged.putAll(w);
        }
        return new FusionSettings(t != null ? t : technique, merged, k != null ? k : rankConstant, minRange);
    }

    /**
     * The weights of {@code branches}, divided by their sum, in the same order.
     *
     * @throws IllegalArgumentException when they are all 0
     */
    public double[] normalizedWeights(List<Branch> branches) {
        double sum = 0;
        for (Branch b : branches) {
            sum += weights.get(b);
        }
        if (sum <= 0) {
            throw new IllegalArgumentException(
                "the fusion weights of the branches " + branches.stream().map(Branch::key).toList() + " are all 0: at least one must be > 0"
            );
        }
        double[] out = new double[branches.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = weights.get(branches.get(i)) / sum;
        }
        return out;
    }
}
