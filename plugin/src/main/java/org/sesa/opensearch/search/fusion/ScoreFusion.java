package org.sesa.opensearch.search.fusion;

import org.sesa.opensearch.search.Branch;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;

/**
 * The fusion math of {@code sesa_fuse}, free of OpenSearch types so it can be checked against the Python
 * reference ({@code ir/fusion.py}) case by case.
 *
 * <p><b>min_max.</b> For each branch, over the documents of its own window (the scores it returned):
 * {@code norm(s) = 1 - (max - s) / range} with {@code range = max(max - min, min_range * |max|)}. With a wide
 * spread this is plain min-max ({@code (s - min) / (max - min)}). A window with a single document, tied
 * scores or a tiny gap does not get stretched to the full 0..1 range: the range never drops below
 * {@code min_range} (default 5%) of the top score, so a 0.2% gap stays a small difference. If the range is
 * still 0 (every score 0, or {@code min_range} 0 and all tied) every document of the window gets 1. A document
 * missing from a branch's window counts 0 for that branch. The fused score is the weighted arithmetic mean
 * {@code sum_b w_b * norm_b / sum_b w_b} over the branches of the mode.
 *
 * <p><b>z_score</b> (the default of {@code sesa_fuse}). For each branch, over its window:
 * {@code norm(s) = (s - min) / sd} with {@code sd} the population standard deviation of the window's scores: a
 * z-score shifted so that the window's last document gets 0, as a document missing from the window does. A branch
 * whose top stands out from the rest of its window gets more say than one whose scores are all alike (min_max
 * stretches both to 0..1). When {@code sd} is 0 (a single document, or all scores tied) every document of the window
 * gets 1. {@code min_range} does not apply. The fused score is the same weighted arithmetic mean as min_max's.
 * Measured through the cluster on the mean of all shared sets, it never lost to min_max and raised the mean gain over
 * BM25, hence the default (plugin/README.md has the numbers).
 *
 * <p><b>rrf.</b> {@code sum_b (w_b / sum w) / (rank_constant + rank_b)}, a missing document contributes 0.
 * {@code rank_b} is the 1-based competition rank within the branch's window (scores best first): equal raw
 * scores share a rank (1, 2, 2, 4), so the result does not depend on the engine's order among ties.
 *
 * <p><b>Order.</b> Fused score descending, then the best (smallest) rank the document has in any branch, then
 * the caller's key order (index name, then id), so equal inputs always give the same ranking.
 */
public final class ScoreFusion {

    private ScoreFusion() {}

    /** One branch's window: document keys best first (scores non-increasing) and their raw scores. */
    public record BranchWindow<K>(Branch branch, List<K> keys, float[] scores) {
        public BranchWindow {
            if (keys.size() != scores.length) {
                throw new IllegalArgumentException("keys and scores differ in length");
            }
        }
    }

    /**
     * One fused document.
     *
     * @param raw   the raw branch score, indexed by {@link Branch#ordinal()}; null when not in that window
     * @param ranks 1-based competition rank per branch, 0 when not in that window
     */
    public record Fused<K>(K key, Float[] raw, int[] ranks, double fused) {
        public int bestRank() {
            int best = Integer.MAX_VALUE;
            for (int r : ranks) {
                if (r > 0 && r < best) {
                    best = r;
                }
            }
            return best;
        }
    }

    /** min_max normalisation of one window, see the class comment. */
    public static double[] minMax(float[] scores, double minRange) {
        Spread w = Spread.of(scores);
        double range = Math.max(w.max() - w.min(), minRange * Math.abs(w.max()));
        return scaled(scores, range, s -> Math.min(1.0, Math.max(0.0, 1.0 - (w.max() - s) / range)));
    }

    /** z_score normalisation of one window, see the class comment. */
    public static double[] zScore(float[] scores) {
        Spread w = Spread.of(scores);
        // all tied: sd is 0 in exact arithmetic, whatever rounding leaves of the mean (3 x 0.1 does not average to 0.1)
        double sd = w.max() > w.min() ? w.sd(scores) : 0;
        return scaled(scores, sd, s -> (s - w.min()) / sd);
    }

    /** The normalised scores of one window under {@code settings}; null for rrf, which uses ranks. */
    static double[] normalized(float[] scores, FusionSettings settings) {
        return switch (settings.technique()) {
            case MIN_MAX -> minMax(scores, settings.minRange());
            case Z_SCORE -> zScore(scores);
            case RRF -> null;
        };
    }

    /** {@code norm} of every score; every score is 1 when the window's {@code spread} is 0 (or not finite). */
    private static double[] scaled(float[] scores, double spread, DoubleUnaryOperator norm) {
        double[] out = new double[scores.length];
        for (int i = 0; i < scores.length; i++) {
            out[i] = spread <= 0 || Double.isFinite(spread) == false ? 1.0 : norm.applyAsDouble(scores[i]);
        }
        return out;
    }

    /** A window's lowest and highest score and their mean (min +inf and max -inf for an empty window). */
    private record Spread(double min, double max, double mean) {
        static Spread of(float[] scores) {
            double min = Double.POSITIVE_INFINITY;
            double max = Double.NEGATIVE_INFINITY;
            double sum = 0;
            for (float s : scores) {
                min = Math.min(min, s);
                max = Math.max(max, s);
                sum += s;
            }
            return new Spread(min, max, sum / scores.length);
        }

        /** The population standard deviation of {@code scores} (the window this was made of). */
        double sd(float[] scores) {
            double squares = 0;
            for (float s : scores) {
                squares += (s - mean) * (s - mean);
            }
            return Math.sqrt(squares / scores.length);
        }
    }

    /**
     * Fuses the windows of {@code windows} (the mode's branches, any order) with {@code settings}.
     *
     * @param keyOrder the last tie-breaker
     */
    public static <K> List<Fused<K>> fuse(List<BranchWindow<K>> windows, FusionSettings settings, Comparator<K> keyOrder) {
        List<Branch> branches = windows.stream().map(BranchWindow::branch).toList();
        double[] w = settings.normalizedWeights(branches);
        int nb = Branch.values().length;
        Map<K, double[]> contributions = new HashMap<>();
        Map<K, Float[]> raw = new HashMap<>();
        Map<K, int[]> ranks = new HashMap<>();
        List<K> firstSeen = new ArrayList<>();
        for (int i = 0; i < windows.size(); i++) {
            BranchWindow<K> win = windows.get(i);
            int b = win.branch().ordinal();
            double[] norm = normalized(win.scores(), settings);
            int rank = 0;
            for (int r = 0; r < win.keys().size(); r++) {
                // competition ranking ("1224"): equal scores share a rank, whatever order the engine put them in
                if (r == 0 || win.scores()[r] != win.scores()[r - 1]) {
                    rank = r + 1;
                }
                K key = win.keys().get(r);
                if (raw.containsKey(key) == false) {
                    raw.put(key, new Float[nb]);
                    ranks.put(key, new int[nb]);
                    contributions.put(key, new double[1]);
                    firstSeen.add(key);
                }
                if (ranks.get(key)[b] != 0) {
                    continue; // a duplicate within one window (cannot happen for one index): keep the better rank
                }
                raw.get(key)[b] = win.scores()[r];
                ranks.get(key)[b] = rank;
                double part = norm != null ? w[i] * norm[r] : w[i] / ((double) settings.rankConstant() + rank);
                contributions.get(key)[0] += part;
            }
        }
        List<Fused<K>> out = new ArrayList<>(firstSeen.size());
        for (K key : firstSeen) {
            out.add(new Fused<>(key, raw.get(key), ranks.get(key), contributions.get(key)[0]));
        }
        out.sort(
            Comparator.<Fused<K>>comparingDouble(f -> -f.fused())
                .thenComparingInt(Fused::bestRank)
                .thenComparing(Fused::key, keyOrder)
        );
        return out;
    }
}
