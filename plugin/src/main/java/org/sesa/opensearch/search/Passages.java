package org.sesa.opensearch.search;

import org.opensearch.common.xcontent.support.XContentMapValues;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The best window of a chunked document ({@code <prefix>_chunks}, written by {@code sesa_encode} with {@code chunking}):
 * the window whose vector is nearest to the query's (cosine), what the dense branch's nested k-NN query scored the
 * document by, found again from the hit's source, so no extra model call and no inner hits are needed.
 */
public final class Passages {

    /** The separator {@code sesa_encode} joins its source fields with by default (and rerank joins its text fields with). */
    public static final String SEPARATOR = "\n";

    private Passages() {}

    /**
     * One window of a document.
     *
     * @param start first character (Unicode code point, as the inference server counts) of the window in the text encoded
     * @param end   end (exclusive)
     * @param score cosine of the window's vector with the query's
     * @param text  the window's text, cut from the hit's text fields joined with {@link #SEPARATOR} (the text as
     *              {@code sesa_encode} joined it with its default separator), or null when the span does not fit in it
     */
    public record Passage(int start, int end, double score, String text) {

        /** {@code {start, end, text}} for {@code _sesa.passage}. */
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("start", start);
            m.put("end", end);
            m.put("text", text);
            return m;
        }
    }

    /**
     * The best window of the document with {@code source}, or null when it has no chunks (ingested without chunking),
     * no window has a vector of the query's dimension, or the query has no vector.
     *
     * @param chunksField {@code <prefix>_chunks}
     * @param textFields  the fields whose joined text the windows' offsets point into ({@code field^boost} allowed)
     */
    public static Passage best(float[] query, Map<String, Object> source, String chunksField, List<String> textFields) {
        if (query == null || query.length == 0 || source == null) {
            return null;
        }
        Object chunks = XContentMapValues.extractValue(chunksField, source);
        if (!(chunks instanceof List<?> windows)) {
            return null;
        }
        double best = Double.NEGATIVE_INFINITY;
        int start = -1;
        int end = -1;
        for (Object w : windows) {
            if (!(w instanceof Map<?, ?> window) || !(window.get("dense") instanceof List<?> dense) || dense.size() != query.length) {
                continue;
            }
            if (!(window.get("start") instanceof Number s) || !(window.get("end") instanceof Number e)) {
                continue;
            }
            double cos = cosine(query, dense);
            if (cos > best) {
                best = cos;
                start = s.intValue();
                end = e.intValue();
            }
        }
        if (start < 0) {
            return null;
        }
        return new Passage(start, end, best, cut(textOf(source, textFields), start, end));
    }

    /** {@code <prefix>_coverage} of the source, or null when not stored. */
    public static Float coverage(Map<String, Object> source, String coverageField) {
        if (source == null) {
            return null;
        }
        return XContentMapValues.extractValue(coverageField, source) instanceof Number n ? n.floatValue() : null;
    }

    /** The field names without their {@code ^boost}. */
    public static List<String> withoutBoosts(List<String> fields) {
        List<String> out = new ArrayList<>(fields.size());
        for (String f : fields) {
            int caret = f.indexOf('^');
            out.add(caret < 0 ? f : f.substring(0, caret));
        }
        return out;
    }

    private static String textOf(Map<String, Object> source, List<String> textFields) {
        List<String> fields = withoutBoosts(textFields);
        return SesaResponses.text(source, fields, SEPARATOR);
    }

    /** Code points {@code [start, end)} of {@code text} (the server counts code points), or null when out of range. */
    static String cut(String text, int start, int end) {
        if (text == null || start < 0 || end < start || end > text.codePointCount(0, text.length())) {
            return null;
        }
        int from = text.offsetByCodePoints(0, start);
        int to = text.offsetByCodePoints(from, end - start);
        return text.substring(from, to);
    }

    private static double cosine(float[] q, List<?> d) {
        double dot = 0;
        double qq = 0;
        double dd = 0;
        for (int i = 0; i < q.length; i++) {
            double v = d.get(i) instanceof Number n ? n.doubleValue() : 0;
            dot += q[i] * v;
            qq += q[i] * q[i];
            dd += v * v;
        }
        return qq == 0 || dd == 0 ? 0 : dot / Math.sqrt(qq * dd);
    }
}
