package org.sesa.opensearch.search;

import org.junit.jupiter.api.Test;
import org.opensearch.search.SearchHit;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CandidateTests {

    static final String SOURCE = "{\"title\":\"T\",\"sesa_dense\":[0.1,0.2,0.3],\"meta\":{\"lang\":\"en\",\"n\":[1,2]},"
        + "\"sesa_concepts\":{\"a\":0.5},\"views\":3,\"gone\":null}";

    static Candidate candidate(String source) {
        SearchHit hit = SearchTestSupport.hit("d1", 1f, source);
        return new Candidate(DocKey.of(hit), hit, new Float[3], new int[3], 1.0, true);
    }

    @Test
    void sourceFieldsParsesOnlyTheTopLevelFieldsThePathsRunThrough() {
        Candidate c = candidate(SOURCE);
        Map<String, Object> m = c.sourceFields(List.of("sesa_concepts", "meta.lang", "title", "views", "gone"));
        assertEquals(Map.of("a", 0.5), m.get("sesa_concepts"));
        assertEquals(Map.of("lang", "en", "n", List.of(1, 2)), m.get("meta"), "the whole top-level object a path enters");
        assertEquals("T", m.get("title"));
        assertEquals(3, m.get("views"));
        assertTrue(m.containsKey("gone") && m.get("gone") == null);
        assertFalse(m.containsKey("sesa_dense"), "the vector is skipped, not parsed");
        assertEquals(c.source().get("meta"), m.get("meta"), "the same values as the full parse");
        assertSame(c.source(), c.sourceFields(List.of("title")), "after a full parse, the full map");
    }

    @Test
    void noSourceIsNullAndAMalformedOneFailsAsTheFullParseDoes() {
        assertNull(candidate(null).sourceFields(List.of("title")));
        Candidate bad = candidate("{\"title\": ");
        assertThrows(RuntimeException.class, () -> bad.sourceFields(List.of("title")));
        assertTrue(candidate(SOURCE).partial());
    }
}
