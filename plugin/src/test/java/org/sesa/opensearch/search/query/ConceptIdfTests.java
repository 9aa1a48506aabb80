package org.sesa.opensearch.search.query;

import org.junit.jupiter.api.Test;
import org.sesa.opensearch.search.SesaResponses;
import org.sesa.opensearch.search.query.QueryEncoding.QueryConcept;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The concept branch's idf: BM25's formula, the weights it scores with, and the explanation's factors. */
class ConceptIdfTests {

    private static final QueryEncoding ENC = new QueryEncoding(
        new float[] { 1f },
        List.of(new QueryConcept("common", "Common", 0.6f), new QueryConcept("rare", "Rare", 0.4f), new QueryConcept("unseen", "Unseen", 0.1f)),
        "d@1",
        "c@1"
    );

    @Test
    void idfIsBm25s() {
        assertEquals(Math.log(1 + 100.5 / 0.5), ConceptIdf.idf(100, 0), 1e-12);
        assertEquals(Math.log(1 + 91.5 / 9.5), ConceptIdf.idf(100, 9), 1e-12);
        assertEquals(Math.log(1 + 0.5 / 100.5), ConceptIdf.idf(100, 100), 1e-12);
        assertTrue(ConceptIdf.idf(100, 100) > 0, "a concept every document carries still counts a little");
        assertEquals(ConceptIdf.idf(100, 100), ConceptIdf.idf(100, 250), 1e-12, "df is clamped to the document count");
        assertEquals(Math.log(2), ConceptIdf.idf(0, 0), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new ConceptIdf(-1, Map.of()));
    }

    @Test
    void rareConceptsOutweighCommonOnes() {
        ConceptIdf idf = new ConceptIdf(100, Map.of("common", 90L, "rare", 2L));
        QueryEncoding weighed = ENC.withIdf(idf);
        assertNull(ENC.idf(), "the cached encoding is left as Encode answered");
        assertSame(idf, weighed.idf());
        assertEquals(1f, ENC.idfOf(ENC.concepts().get(0)));
        List<QueryConcept> scoring = weighed.scoringConcepts();
        // 0.4 * 3.70 > 0.1 * 5.31 > 0.6 * 0.11: the common concept, strongest for Encode, weighs least
        assertEquals(List.of("rare", "unseen", "common"), scoring.stream().map(QueryConcept::key).toList());
        assertEquals(0.4f * (float) ConceptIdf.idf(100, 2), scoring.get(0).weight(), 1e-6);
        assertEquals(0.1f * (float) ConceptIdf.idf(100, 0), scoring.get(1).weight(), 1e-6, "a concept no document carries: df 0");
        assertEquals(0.6f * (float) ConceptIdf.idf(100, 90), scoring.get(2).weight(), 1e-6);
        assertEquals(ENC.concepts(), ENC.scoringConcepts(), "without idf the weights are Encode's");
    }

    @Test
    void explanationShowsTheFactorsTheBranchScoredWith() {
        ConceptIdf idf = new ConceptIdf(100, Map.of("common", 90L, "rare", 2L));
        Map<String, Object> source = Map.of("emb_concepts", Map.of("common", 0.5, "rare", 0.25));
        List<Map<String, Object>> shared = SesaResponses.sharedConcepts(ENC.withIdf(idf), source, "emb_concepts");
        assertEquals(List.of("rare", "common"), shared.stream().map(m -> m.get("key")).toList());
        Map<String, Object> rare = shared.get(0);
        double rareIdf = (float) ConceptIdf.idf(100, 2);
        assertEquals(rareIdf, (double) rare.get("idf"), 1e-9);
        assertEquals(0.4f * (float) rareIdf * 0.25, (double) rare.get("contribution"), 1e-6);
        // without idf: contribution = query_weight * doc_weight, no idf entry
        List<Map<String, Object>> plain = SesaResponses.sharedConcepts(ENC, source, "emb_concepts");
        assertEquals(List.of("common", "rare"), plain.stream().map(m -> m.get("key")).toList());
        assertFalse(plain.get(0).containsKey("idf"));
        assertEquals(0.6f * 0.5, (double) plain.get(0).get("contribution"), 1e-6);
    }
}
