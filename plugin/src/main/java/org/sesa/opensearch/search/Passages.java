package org.sesa.opensearch.search;

import org.apache.lucene.search.join.ScoreMode;
import org.opensearch.common.document.DocumentField;
import org.opensearch.common.xcontent.support.XContentMapValues;
import org.opensearch.index.query.InnerHitBuilder;
import org.opensearch.index.query.MatchAllQueryBuilder;
import org.opensearch.index.query.NestedQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.opensearch.index.query.functionscore.ScriptScoreQueryBuilder;
import org.opensearch.script.Script;
import org.opensearch.script.ScriptType;
import org.opensearch.search.SearchHit;
import org.opensearch.search.SearchHits;
import org.opensearch.search.fetch.subphase.FetchSourceContext;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The best window of a chunked document ({@code <prefix>_chunks}, written by {@code sesa_encode} with {@code chunking}):
 * the window whose vector is nearest to the query's (cosine), what the dense branch's nested k-NN query scored the
 * document by, found again without a model call.
 *
 * <p>Two ways, with the same answer. {@link #lookup}: the fetch of a page's hits ({@code HitBackfill}) carries an
 * optional nested clause that scores each window of the fetched documents by the exact cosine (k-NN's
 * {@code knn_score} script, on the windows' vectors as the vector index holds them) and names the best one as an inner
 * hit, with {@code start}/{@code end} from doc values ({@link #lookedUp}): no window vector is read from
 * {@code _source} or sent back. Hits a main branch fetched itself (e.g. for highlights) get the same lookup as a lean
 * search. {@link #best}: the cosine with each window vector in the hit's {@code _source}, for a hit the lookup did not
 * find again (changed since its branch search), when its source holds the windows.
 */
public final class Passages {

    /** The separator {@code sesa_encode} joins its source fields with by default (and rerank joins its text fields with). */
    public static final String SEPARATOR = "\n";

    /** Name of the inner hits that {@link #lookup} asks for (removed from the hit before it is returned). */
    public static final String INNER_HITS = "_sesa_passage";

    private Passages() {}

    /**
     * The window a {@link #lookup} found for a document.
     *
     * @param start first character (code point) of the window in the text encoded
     * @param end   end (exclusive)
     * @param score the lookup's score of the window (k-NN's cosine script score, which grows with the cosine)
     */
    public record Span(int start, int end, double score) {}

    /**
     * What a fetched hit says about its best window: {@code looked} is false when its fetch did not look it up (then
     * {@link #best} reads the source); otherwise {@code span} is the window, or null when the document has no chunks.
     */
    public record Lookup(boolean looked, Span span) {
        public static final Lookup NOT_LOOKED_UP = new Lookup(false, null);
    }

    /**
     * The clause a page fetch adds ({@code should}, so it filters nothing) to name the best window of each fetched
     * document: a {@code nested} query on {@code chunksField} ({@code score_mode: max}, {@code ignore_unmapped}) around a
     * {@code script_score} with k-NN's {@code knn_score} ({@code cosinesimil}) of {@code query} on
     * {@code <chunksField>.dense}, whose best window comes back as inner hit {@link #INNER_HITS}: no {@code _source},
     * {@code start} and {@code end} from doc values. The script runs only on the windows of the fetched documents.
     * Null when the query has no vector (or a zero one, which has no cosine).
     */
    public static QueryBuilder lookup(String chunksField, float[] query) {
        if (query == null || query.length == 0) {
            return null;
        }
        List<Float> vector = new ArrayList<>(query.length);
        double norm = 0;
        for (float f : query) {
            vector.add(f);
            norm += f * f;
        }
        if (norm == 0 || Double.isFinite(norm) == false) {
            return null;
        }
        Map<String, Object> params = new HashMap<>();
        params.put("field", chunksField + ".dense");
        params.put("query_value", vector);
        params.put("space_type", "cosinesimil");
        Script cosine = new Script(ScriptType.INLINE, "knn", "knn_score", params);
        InnerHitBuilder best = new InnerHitBuilder(INNER_HITS).setSize(1)
            .setFetchSourceContext(new FetchSourceContext(false))
            .addDocValueField(chunksField + ".start")
            .addDocValueField(chunksField + ".end")
            .setIgnoreUnmapped(true);
        return new NestedQueryBuilder(chunksField, new ScriptScoreQueryBuilder(new MatchAllQueryBuilder(), cosine), ScoreMode.Max, best)
            .ignoreUnmapped(true);
    }

    /**
     * What {@code hit}'s {@link #lookup} found, removing its inner hits from the hit (the user did not ask for them).
     * {@link Lookup#NOT_LOOKED_UP} when the hit carries none (its fetch had no lookup, or its index maps no chunks).
     */
    public static Lookup lookedUp(SearchHit hit, String chunksField) {
        Map<String, SearchHits> inner = hit.getInnerHits();
        if (inner == null || inner.containsKey(INNER_HITS) == false) {
            return Lookup.NOT_LOOKED_UP;
        }
        Map<String, SearchHits> rest = new HashMap<>(inner);
        SearchHits found = rest.remove(INNER_HITS);
        hit.setInnerHits(rest.isEmpty() ? null : rest);
        SearchHit[] windows = found == null ? new SearchHit[0] : found.getHits();
        if (windows.length == 0) {
            return new Lookup(true, null);
        }
        SearchHit w = windows[0];
        Integer start = intField(w, chunksField + ".start");
        Integer end = intField(w, chunksField + ".end");
        if (start == null || end == null) {
            return new Lookup(true, null);
        }
        return new Lookup(true, new Span(start, end, w.getScore()));
    }

    private static Integer intField(SearchHit hit, String name) {
        DocumentField f = hit.field(name);
        return f != null && f.getValue() instanceof Number n ? n.intValue() : null;
    }

    /**
     * The best window of candidate {@code c}: the one its fetch looked up ({@link #lookup}), or else the one its source's
     * window vectors give ({@link #best}); null when it has none (or the query has no vector).
     */
    public static Passage of(Candidate c, float[] query, String chunksField, List<String> textFields) {
        return of(c, query, chunksField, textFields, c.sourceFields(paths(c, chunksField, textFields)));
    }

    /**
     * {@link #of(Candidate, float[], String, List)} on {@code fields}: the candidate's source, or the part of it that
     * holds {@link #paths} (read together with what else a caller needs: each read of a chunked source scans every
     * window vector in it).
     */
    public static Passage of(Candidate c, float[] query, String chunksField, List<String> textFields, Map<String, Object> fields) {
        Lookup lookup = c.passageLookup();
        if (lookup.looked()) {
            Span s = lookup.span();
            if (s == null || query == null || query.length == 0) {
                return null;
            }
            return new Passage(s.start(), s.end(), s.score(), cut(textOf(fields, textFields), s.start(), s.end()));
        }
        return best(query, fields, chunksField, textFields);
    }

    /** The source paths {@link #of} reads for {@code c}: the text fields, and the windows when its fetch did not look its best one up. */
    public static List<String> paths(Candidate c, String chunksField, List<String> textFields) {
        if (c.passageLookup().looked()) {
            return textFields;
        }
        List<String> paths = new ArrayList<>(textFields);
        paths.add(chunksField);
        return paths;
    }

    /**
     * One window of a document.
     *
     * @param start first character (Unicode code point, as the inference server counts) of the window in the text encoded
     * @param end   end (exclusive)
     * @param score how near the window's vector is to the query's: the cosine ({@link #best}) or the lookup's score
     *              ({@link #lookup}), which grows with it
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
