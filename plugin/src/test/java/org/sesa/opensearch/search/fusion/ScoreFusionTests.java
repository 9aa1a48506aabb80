package org.sesa.opensearch.search.fusion;

import org.junit.jupiter.api.Test;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.fusion.ScoreFusion.BranchWindow;
import org.sesa.opensearch.search.fusion.ScoreFusion.Fused;

import java.util.Comparator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hand-computed cases; tests/tooling/test_fusion_reference.py checks the same numbers against integration/fusion.py. */
class ScoreFusionTests {

    static final double EPS = 1e-12;

    static FusionSettings settings(FusionTechnique t, double bm25, double dense, double concepts, int k, double minRange) {
        return new FusionSettings(t, Map.of(Branch.BM25, bm25, Branch.DENSE, dense, Branch.CONCEPTS, concepts), k, minRange);
    }

    static BranchWindow<String> window(Branch b, Object... idScore) {
        List<String> keys = new java.util.ArrayList<>();
        float[] scores = new float[idScore.length / 2];
        for (int i = 0; i < idScore.length; i += 2) {
            keys.add((String) idScore[i]);
            scores[i / 2] = ((Number) idScore[i + 1]).floatValue();
        }
        return new BranchWindow<>(b, keys, scores);
    }

    static List<String> ids(List<Fused<String>> fused) {
        return fused.stream().map(Fused::key).toList();
    }

    @Test
    void minMaxIsPlainMinMaxForAWideSpread() {
        assertArrayEquals(new double[] { 1, 0.75, 0 }, ScoreFusion.minMax(new float[] { 4, 3, 0 }, 0.05), EPS);
        assertArrayEquals(new double[] { 1, 0.5, 0 }, ScoreFusion.minMax(new float[] { 10, 6, 2 }, 0.05), EPS);
    }

    @Test
    void aSingleMatchOrTiesGetOneNotZero() {
        assertArrayEquals(new double[] { 1 }, ScoreFusion.minMax(new float[] { 0.3f }, 0.05), EPS);
        assertArrayEquals(new double[] { 1, 1, 1 }, ScoreFusion.minMax(new float[] { 5, 5, 5 }, 0.05), EPS);
        assertArrayEquals(new double[] { 1, 1 }, ScoreFusion.minMax(new float[] { 0, 0 }, 0.05), EPS, "all-zero window");
        assertArrayEquals(new double[] { 1, 1 }, ScoreFusion.minMax(new float[] { 3, 3 }, 0), EPS, "min_range 0, tied");
        assertArrayEquals(new double[0], ScoreFusion.minMax(new float[0], 0.05), EPS);
    }

    @Test
    void aTinyGapStaysSmall() {
        // range = max(0.01, 0.05 * 10) = 0.5, so 9.99 -> 1 - 0.01 / 0.5 = 0.98 (plain min-max would say 0)
        double[] n = ScoreFusion.minMax(new float[] { 10f, 9.99f }, 0.05);
        assertEquals(1.0, n[0], EPS);
        assertEquals(1 - (10f - 9.99f) / 0.5, n[1], 1e-9);
        assertTrue(n[1] > 0.97);
        // with min_range 0 the rule is plain min-max
        assertArrayEquals(new double[] { 1, 0 }, ScoreFusion.minMax(new float[] { 10f, 9.99f }, 0), EPS);
        // knn-like scores: range 0.012 < 0.05 * 0.5128 = 0.02564
        double[] d = ScoreFusion.minMax(new float[] { 0.5128f, 0.5008f }, 0.05);
        assertEquals(1 - (0.5128f - 0.5008f) / (0.05 * 0.5128f), d[1], 1e-6);
    }

    @Test
    void minMaxFusionWithMissingDocsWeightsAndTies() {
        List<BranchWindow<String>> w = List.of(
            window(Branch.BM25, "d1", 10, "d2", 6, "d3", 2),
            window(Branch.DENSE, "d2", 0.9, "d4", 0.8),
            window(Branch.CONCEPTS, "d1", 0.3)
        );
        List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.MIN_MAX, 0.4, 0.4, 0.2, 60, 0.05), Comparator.naturalOrder());
        // d1 = .4*1 + .2*1 = .6, d2 = .4*.5 + .4*1 = .6 (tie: both have a rank 1 -> id order), d4 = .4*0, d3 = .4*0 (d4's best rank 2 < 3)
        assertEquals(List.of("d1", "d2", "d4", "d3"), ids(f));
        assertEquals(0.6, f.get(0).fused(), 1e-9);
        assertEquals(0.6, f.get(1).fused(), 1e-9);
        assertEquals(0.0, f.get(2).fused(), EPS);
        assertEquals(10f, f.get(0).raw()[Branch.BM25.ordinal()]);
        assertNull(f.get(0).raw()[Branch.DENSE.ordinal()], "missing from the dense window");
        assertEquals(0.3f, f.get(0).raw()[Branch.CONCEPTS.ordinal()]);
        assertArrayEquals(new int[] { 2, 1, 0 }, f.get(1).ranks());
    }

    @Test
    void weightsAreNormalisedAndZeroWeightsRejected() {
        List<BranchWindow<String>> w = List.of(window(Branch.BM25, "a", 2, "b", 1), window(Branch.DENSE, "b", 0.9, "a", 0.1));
        // weights 3:1 -> .75/.25: a = .75*1 + .25*0 = .75, b = .75*0 + .25*1 = .25
        List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.MIN_MAX, 3, 1, 0, 60, 0.05), Comparator.naturalOrder());
        assertEquals(List.of("a", "b"), ids(f));
        assertEquals(0.75, f.get(0).fused(), EPS);
        assertEquals(0.25, f.get(1).fused(), EPS);
        // dense weighted higher flips it
        f = ScoreFusion.fuse(w, settings(FusionTechnique.MIN_MAX, 1, 3, 0, 60, 0.05), Comparator.naturalOrder());
        assertEquals(List.of("b", "a"), ids(f));
        IllegalArgumentException e = assertThrows(
            IllegalArgumentException.class,
            () -> ScoreFusion.fuse(w, settings(FusionTechnique.MIN_MAX, 0, 0, 1, 60, 0.05), Comparator.naturalOrder())
        );
        assertTrue(e.getMessage().contains("are all 0"));
    }

    @Test
    void rrfSumsWeightedReciprocalRanks() {
        List<BranchWindow<String>> w = List.of(
            window(Branch.BM25, "d1", 9, "d2", 8),
            window(Branch.DENSE, "d2", 0.9, "d3", 0.8),
            window(Branch.CONCEPTS, "d3", 0.5)
        );
        List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.RRF, 1, 1, 1, 60, 0.05), Comparator.naturalOrder());
        double third = 1.0 / 3;
        assertEquals(List.of("d2", "d3", "d1"), ids(f), "d2 and d3 tie (ranks 1 and 2 each): id order");
        assertEquals(third / 62 + third / 61, f.get(0).fused(), EPS);
        assertEquals(third / 62 + third / 61, f.get(1).fused(), EPS);
        assertEquals(third / 61, f.get(2).fused(), EPS);
        // weights 2:1:1 -> .5/.25/.25 and k = 1
        f = ScoreFusion.fuse(w, settings(FusionTechnique.RRF, 2, 1, 1, 1, 0.05), Comparator.naturalOrder());
        assertEquals(List.of("d2", "d1", "d3"), ids(f));
        assertEquals(0.5 / 3 + 0.25 / 2, f.get(0).fused(), EPS);
        assertEquals(0.5 / 2, f.get(1).fused(), EPS);
        assertEquals(0.25 / 3 + 0.25 / 2, f.get(2).fused(), EPS);
    }

    @Test
    void tiedScoresShareARankSoRrfIgnoresTheEnginesTieOrder() {
        // bm25 [x 5, y 5, z 3] -> competition ranks 1, 1, 3
        List<Fused<String>> f = ScoreFusion.fuse(
            List.of(window(Branch.BM25, "y", 5, "x", 5, "z", 3)),
            settings(FusionTechnique.RRF, 1, 1, 1, 60, 0.05),
            Comparator.naturalOrder()
        );
        assertEquals(List.of("x", "y", "z"), ids(f), "x and y tie on score and rank: key order");
        assertEquals(1.0 / 61, f.get(0).fused(), EPS);
        assertEquals(1.0 / 61, f.get(1).fused(), EPS);
        assertEquals(1.0 / 63, f.get(2).fused(), EPS);
        assertArrayEquals(new int[] { 3, 0, 0 }, f.get(2).ranks());
    }

    @Test
    void emptyBranchesStillCountInTheWeights() {
        List<BranchWindow<String>> w = List.of(window(Branch.BM25, "a", 1), window(Branch.DENSE), window(Branch.CONCEPTS));
        List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.MIN_MAX, 0.4, 0.4, 0.2, 60, 0.05), Comparator.naturalOrder());
        assertEquals(0.4, f.get(0).fused(), EPS);
        assertTrue(ScoreFusion.fuse(List.of(window(Branch.BM25)), settings(FusionTechnique.RRF, 1, 1, 1, 60, 0.05), Comparator.<String>naturalOrder()).isEmpty());
    }

    @Test
    void requestOverridesReplaceOnlyWhatTheySet() {
        FusionSettings base = settings(FusionTechnique.MIN_MAX, 0.4, 0.4, 0.2, 60, 0.05);
        FusionSettings o = base.with(FusionTechnique.RRF, Map.of(Branch.CONCEPTS, 1.0), null);
        assertEquals(FusionTechnique.RRF, o.technique());
        assertEquals(Map.of(Branch.BM25, 0.4, Branch.DENSE, 0.4, Branch.CONCEPTS, 1.0), o.weights());
        assertEquals(60, o.rankConstant());
        assertEquals(base, base.with(null, null, null));
        assertThrows(IllegalArgumentException.class, () -> settings(FusionTechnique.RRF, 1, 1, 1, 0, 0.05));
        assertThrows(IllegalArgumentException.class, () -> settings(FusionTechnique.RRF, 1, 1, 1, 60, 1.5));
        assertThrows(IllegalArgumentException.class, () -> settings(FusionTechnique.RRF, -1, 1, 1, 60, 0.05));
    }
}
