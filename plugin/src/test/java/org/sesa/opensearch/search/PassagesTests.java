package org.sesa.opensearch.search;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class PassagesTests {

    private static Map<String, Object> window(List<Float> dense, int start, int end) {
        return Map.of("dense", dense, "start", start, "end", end);
    }

    @Test
    void theNearestWindowIsCutFromTheJoinedText() {
        Map<String, Object> source = Map.of(
            "title", "Über",
            "text", "a 😀 emoji and more",
            "sesa_chunks", List.of(window(List.of(0f, 1f), 0, 4), window(List.of(0.9f, 0.1f), 5, 12))
        );
        Passages.Passage p = Passages.best(new float[] { 1f, 0f }, source, "sesa_chunks", List.of("title^2", "text"));
        assertEquals(5, p.start());
        assertEquals(12, p.end());
        // "Über\na 😀 emoji": code points 5..12 are "a 😀 emo" (the emoji is one code point, two chars)
        assertEquals("a 😀 emo", p.text());
        assertEquals(Map.of("start", 5, "end", 12, "text", "a 😀 emo"), Map.copyOf(p.toMap()));
    }

    @Test
    void noChunksNoPassageAndASpanOutsideTheTextHasNoText() {
        assertNull(Passages.best(new float[] { 1f, 0f }, Map.of("text", "x"), "sesa_chunks", List.of("text")));
        assertNull(Passages.best(new float[0], Map.of("sesa_chunks", List.of(window(List.of(1f, 0f), 0, 1))), "sesa_chunks", List.of("text")));
        assertNull(Passages.best(new float[] { 1f, 0f, 0f }, Map.of("sesa_chunks", List.of(window(List.of(1f, 0f), 0, 1))), "sesa_chunks", List.of("text")));
        Passages.Passage p = Passages.best(
            new float[] { 1f, 0f },
            Map.of("text", "short", "sesa_chunks", List.of(window(List.of(1f, 0f), 2, 50))),
            "sesa_chunks",
            List.of("text")
        );
        assertEquals(2, p.start());
        assertNull(p.text(), "the text fields do not hold the encoded text");
        assertEquals(0.25f, Passages.coverage(Map.of("sesa_coverage", 0.25), "sesa_coverage"));
        assertNull(Passages.coverage(Map.of(), "sesa_coverage"));
    }
}
