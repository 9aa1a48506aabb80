package org.sesa.opensearch.search;

import org.junit.jupiter.api.Test;
import org.sesa.opensearch.index.EvidenceRecord;
import org.sesa.opensearch.index.IndexEvidence;
import org.sesa.opensearch.index.IndexEvidenceLookup;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SearchEvidenceTests {

    static EvidenceRecord record(double conceptsWeight, String dataset) {
        return EvidenceRecord.parse(
            Map.of(
                "version", 1,
                "fusion", Map.of("weights", Map.of("bm25", 1, "dense", 1, "concepts", conceptsWeight)),
                "measured", Map.of("dataset", dataset)
            )
        );
    }

    /** A lookup over {@code index -> evidence}, for prefix "sesa" only; records which indices were asked. */
    static final class Lookup implements IndexEvidenceLookup {
        final Map<String, IndexEvidence> byIndex = new HashMap<>();
        final List<String> asked = new ArrayList<>();

        @Override
        public IndexEvidence evidence(String index, String prefix) {
            asked.add(index);
            return "sesa".equals(prefix) ? byIndex.getOrDefault(index, IndexEvidence.ABSENT) : IndexEvidence.ABSENT;
        }
    }

    @Test
    void aRecordEveryCandidateIndexSharesIsUsed() {
        Lookup lookup = new Lookup();
        lookup.byIndex.put("a", IndexEvidence.of(record(0.1, "scifact")));
        lookup.byIndex.put("b", IndexEvidence.of(record(0.1, "scifact")));
        SearchEvidence e = SearchEvidence.resolve(List.of("b", "a", "b", "a"), "sesa", lookup);
        assertEquals(SearchEvidence.Kind.SHARED, e.kind());
        assertEquals(record(0.1, "scifact"), e.record());
        assertEquals(List.of("a", "b"), lookup.asked, "each index once, in order");
        Map<String, Object> section = new LinkedHashMap<>();
        e.reportInto(section);
        assertEquals(Map.of("evidence", Map.of("index", "a,b", "measured", Map.of("dataset", "scifact"))), section);
        assertEquals(SearchEvidence.Kind.NONE, SearchEvidence.resolve(List.of("a"), "other", lookup).kind(), "per target prefix");
    }

    @Test
    void indicesThatDoNotShareOneRecordHaveNone() {
        Lookup lookup = new Lookup();
        lookup.byIndex.put("a", IndexEvidence.of(record(0.1, "scifact")));
        lookup.byIndex.put("b", IndexEvidence.of(record(0.1, "nfcorpus")));
        lookup.byIndex.put("c", IndexEvidence.of(record(0.2, "scifact")));
        for (List<String> indices : List.of(List.of("a", "b"), List.of("a", "c"), List.of("a", "plain"))) {
            SearchEvidence e = SearchEvidence.resolve(indices, "sesa", lookup);
            assertEquals(SearchEvidence.Kind.MIXED, e.kind(), indices.toString());
            assertNull(e.record());
            assertEquals("mixed", e.report());
        }
        assertEquals(SearchEvidence.Kind.MIXED, SearchEvidence.resolve(java.util.Arrays.asList("a", null), "sesa", lookup).kind(), "a hit without its index");
        assertSame(SearchEvidence.NONE, SearchEvidence.resolve(List.of("plain", "other"), "sesa", lookup));
        assertSame(SearchEvidence.NONE, SearchEvidence.resolve(List.of(), "sesa", lookup), "no candidate, nothing to fuse");
        Map<String, Object> section = new LinkedHashMap<>();
        SearchEvidence.NONE.reportInto(section);
        assertTrue(section.isEmpty(), "nothing reported when there is no record");
    }

    @Test
    void anInvalidRecordIsIgnoredAndReported() {
        Lookup lookup = new Lookup();
        lookup.byIndex.put("a", IndexEvidence.of(record(0.1, "scifact")));
        lookup.byIndex.put("bad", IndexEvidence.invalid("[_meta.sesa.evidence.sesa] [version] must be 1, got [2]"));
        SearchEvidence e = SearchEvidence.resolve(List.of("a", "bad"), "sesa", lookup);
        assertEquals(SearchEvidence.Kind.INVALID, e.kind());
        assertNull(e.record());
        Map<String, Object> section = new LinkedHashMap<>();
        e.reportInto(section);
        assertEquals("invalid", section.get("evidence"));
        assertEquals("[bad] [_meta.sesa.evidence.sesa] [version] must be 1, got [2]", section.get("evidence_reason"));
    }

    @Test
    void sourcesArePrecedence() {
        assertEquals("request", SearchEvidence.source(true, true));
        assertEquals("index_evidence", SearchEvidence.source(false, true));
        assertEquals("pipeline", SearchEvidence.source(false, false));
    }
}
