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

/** Hand-computed cases; tests/tooling/test_fusion_reference.py checks the same numbers against ir/fusion.py. */
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

    /** bm25 [d1 10, d2 6, d3 2], dense [d2 .9, d4 .8], concepts [d1 .3] fused with weights .4/.4/.2. */
    static List<Fused<String>> fuseWithMissingDocs(FusionTechnique t) {
        List<BranchWindow<String>> w = List.of(
            window(Branch.BM25, "d1", 10, "d2", 6, "d3", 2),
            window(Branch.DENSE, "d2", 0.9, "d4", 0.8),
            window(Branch.CONCEPTS, "d1", 0.3)
        );
        return ScoreFusion.fuse(w, settings(t, 0.4, 0.4, 0.2, 60, 0.05), Comparator.naturalOrder());
    }

    @Test
    void minMaxFusionWithMissingDocsWeightsAndTies() {
        List<Fused<String>> f = fuseWithMissingDocs(FusionTechnique.MIN_MAX);
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

    // -- z_score --------------------------------------------------------------------------------------------------

    /** sqrt(6) and sqrt(1.5): the z-scores of a window of three evenly spaced scores, top and middle. */
    static final double ROOT6 = Math.sqrt(6);
    static final double ROOT1_5 = Math.sqrt(1.5);

    @Test
    void zScoreDividesTheGapToTheLowestScoreByThePopulationSd() {
        // mean 5, sd sqrt((25 + 1 + 1 + 9) / 4) = 3: (s - 2) / 3
        assertArrayEquals(new double[] { 8.0 / 3, 2.0 / 3, 2.0 / 3, 0 }, ScoreFusion.zScore(new float[] { 10, 4, 4, 2 }), EPS);
        // mean 6, sd sqrt(32 / 3): 8 / sd = sqrt 6, 4 / sd = sqrt 1.5
        assertArrayEquals(new double[] { ROOT6, ROOT1_5, 0 }, ScoreFusion.zScore(new float[] { 10, 6, 2 }), EPS);
        // two documents: the gap is twice the sd, whatever its size (min_max's range floor does not apply)
        assertArrayEquals(new double[] { 2, 0 }, ScoreFusion.zScore(new float[] { 4, 0 }), EPS);
        assertArrayEquals(new double[] { 2, 0 }, ScoreFusion.zScore(new float[] { 10f, 9.5f }), EPS);
    }

    @Test
    void zScoreOfASingleDocumentOrTiedScoresIsOne() {
        assertArrayEquals(new double[] { 1 }, ScoreFusion.zScore(new float[] { 0.3f }), EPS);
        assertArrayEquals(new double[] { 1, 1, 1 }, ScoreFusion.zScore(new float[] { 5, 5, 5 }), EPS);
        assertArrayEquals(new double[] { 1, 1 }, ScoreFusion.zScore(new float[] { 0, 0 }), EPS, "all-zero window");
        // tied, though three 0.1s do not average to 0.1 in floating point (the sd would be ~1e-17, every score 0)
        assertArrayEquals(new double[] { 1, 1, 1 }, ScoreFusion.zScore(new float[] { 0.1f, 0.1f, 0.1f }), EPS, "rounding");
        assertArrayEquals(new double[0], ScoreFusion.zScore(new float[0]), EPS);
    }

    @Test
    void zScoreFusionWithMissingDocsAndASingleDocumentWindow() {
        List<Fused<String>> f = fuseWithMissingDocs(FusionTechnique.Z_SCORE);
        // bm25 d1 sqrt 6, d2 sqrt 1.5, d3 0; dense d2 2, d4 0; concepts d1 1 (alone); a missing document counts 0:
        // d2 = .4 sqrt 1.5 + .4 * 2, d1 = .4 sqrt 6 + .2 * 1, d4 = d3 = 0 (d4's best rank 2 < 3)
        assertEquals(List.of("d2", "d1", "d4", "d3"), ids(f));
        assertEquals(0.4 * ROOT1_5 + 0.4 * 2, f.get(0).fused(), 1e-6);
        assertEquals(0.4 * ROOT6 + 0.2, f.get(1).fused(), 1e-9);
        assertEquals(0.0, f.get(2).fused(), EPS, "the dense window's last document gets 0, as a missing one");
        assertEquals(0.0, f.get(3).fused(), EPS);
        assertNull(f.get(1).raw()[Branch.DENSE.ordinal()], "d1 is missing from the dense window");
    }

    @Test
    void zScoreWeightsAreNormalisedAndMinRangeDoesNotApply() {
        List<BranchWindow<String>> w = List.of(window(Branch.BM25, "a", 2, "b", 1), window(Branch.DENSE, "b", 0.9, "a", 0.1));
        // each window [2, 0]; weights 3:1 -> .75/.25: a = .75 * 2 = 1.5, b = .25 * 2 = .5
        for (double minRange : new double[] { 0, 0.05, 1 }) {
            List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.Z_SCORE, 3, 1, 0, 60, minRange), Comparator.naturalOrder());
            assertEquals(List.of("a", "b"), ids(f));
            assertEquals(1.5, f.get(0).fused(), 1e-6);
            assertEquals(0.5, f.get(1).fused(), 1e-6);
        }
        List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.Z_SCORE, 1, 3, 0, 60, 0.05), Comparator.naturalOrder());
        assertEquals(List.of("b", "a"), ids(f), "dense weighted higher flips it");
        assertEquals(1.5, f.get(0).fused(), 1e-6);
    }

    @Test
    void zScoreOnThePipelineScenario() {
        // SesaFuseAndRerankProcessorTests' windows and harness weights (test_fusion_reference.py has the same case)
        List<BranchWindow<String>> w = List.of(
            window(Branch.BM25, "a", 8, "b", 4),
            window(Branch.DENSE, "c", 0.9, "a", 0.8, "d", 0.7),
            window(Branch.CONCEPTS, "b", 0.6, "c", 0.3)
        );
        List<Fused<String>> f = ScoreFusion.fuse(w, settings(FusionTechnique.Z_SCORE, 0.4, 0.4, 0.2, 60, 0.05), Comparator.naturalOrder());
        // bm25 sd 2: a 2, b 0; dense sd sqrt(.02 / 3): c sqrt 6, a sqrt 1.5, d 0; concepts sd .15: b 2, c 0
        assertEquals(List.of("a", "c", "b", "d"), ids(f));
        assertEquals(0.4 * 2 + 0.4 * ROOT1_5, f.get(0).fused(), 1e-6);
        assertEquals(0.4 * ROOT6, f.get(1).fused(), 1e-6);
        assertEquals(0.2 * 2, f.get(2).fused(), 1e-6);
        assertEquals(0.0, f.get(3).fused(), EPS);
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
