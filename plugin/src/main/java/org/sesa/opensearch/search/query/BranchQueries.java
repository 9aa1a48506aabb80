package org.sesa.opensearch.search.query;

import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.common.xcontent.XContentType;
import org.opensearch.common.xcontent.json.JsonXContent;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.DeprecationHandler;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.XContentBuilder;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.index.query.AbstractQueryBuilder;
import org.opensearch.index.query.QueryBuilder;
import org.sesa.opensearch.search.query.QueryEncoding.QueryConcept;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The JSON of the three branch queries. They are built as JSON and parsed through the node's
 * {@link NamedXContentRegistry}, so {@code knn} (k-NN plugin) and {@code rank_feature} (mapper-extras module)
 * are used without linking their classes; a node without them fails the search with the parser's message.
 *
 * <p>The user's {@code query}, when present, restricts every branch: a {@code bool.filter} for BM25 and
 * concepts, the k-NN {@code filter} (a pre-filter, so k results are found inside the filter) for dense.
 */
public final class BranchQueries {

    private BranchQueries() {}

    /** {@code multi_match} of the query text over {@code fields} ({@code "title^2"} boosts allowed). */
    public static Map<String, Object> bm25(String queryText, List<String> fields, Map<String, Object> filter) {
        Map<String, Object> mm = new LinkedHashMap<>();
        mm.put("query", queryText);
        mm.put("fields", List.copyOf(fields));
        Map<String, Object> match = Map.of("multi_match", mm);
        if (filter == null) {
            return match;
        }
        Map<String, Object> bool = new LinkedHashMap<>();
        bool.put("must", List.of(match));
        bool.put("filter", List.of(filter));
        return Map.of("bool", bool);
    }

    /** {@code knn} on {@code field} with {@code k}; the filter (if any) is the k-NN pre-filter. */
    public static Map<String, Object> dense(String field, float[] vector, int k, Map<String, Object> filter) {
        List<Float> v = new ArrayList<>(vector.length);
        for (float f : vector) {
            v.add(f);
        }
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("vector", v);
        inner.put("k", k);
        if (filter != null) {
            inner.put("filter", filter);
        }
        return Map.of("knn", Map.of(field, inner));
    }

    /**
     * The dense branch of an index that holds the windows of a chunked encoding: a {@code dis_max} of the {@code knn} on
     * {@code denseField} (the first window; the filter is its pre-filter) and a {@code nested} query on
     * {@code chunksPath} wrapping a {@code knn} on {@code <chunksPath>.dense} with {@code score_mode: max}, so a document
     * scores by its best window (its first window is one of them) and a document without chunks still by its first
     * window. The nested query ignores indices that do not map the path; the filter restricts it from outside (the
     * user's query is on the parent documents, not on the windows).
     */
    public static Map<String, Object> denseBestWindow(
        String denseField,
        String chunksPath,
        float[] vector,
        int k,
        Map<String, Object> filter
    ) {
        Map<String, Object> nested = new LinkedHashMap<>();
        nested.put("path", chunksPath);
        nested.put("query", dense(chunksPath + ".dense", vector, k, null));
        nested.put("score_mode", "max");
        nested.put("ignore_unmapped", true);
        Map<String, Object> windows = Map.of("nested", nested);
        if (filter != null) {
            Map<String, Object> bool = new LinkedHashMap<>();
            bool.put("must", List.of(windows));
            bool.put("filter", List.of(filter));
            windows = Map.of("bool", bool);
        }
        Map<String, Object> disMax = new LinkedHashMap<>();
        disMax.put("queries", List.of(dense(denseField, vector, k, filter), windows));
        disMax.put("tie_breaker", 0.0);
        return Map.of("dis_max", disMax);
    }

    /**
     * A {@code bool} of one {@code rank_feature} (linear, boost = the query's weight) per query concept on
     * {@code <field>.<key>}, so a document's score is the dot product of the two concept vectors. At least one
     * clause must match. Null when the query has no usable concept (keys must be non-empty and dot-free).
     */
    public static Map<String, Object> concepts(String field, List<QueryConcept> concepts, Map<String, Object> filter) {
        List<Object> should = new ArrayList<>();
        for (QueryConcept c : concepts) {
            if (searchable(c) == false) {
                continue;
            }
            Map<String, Object> rf = new LinkedHashMap<>();
            rf.put("field", field + "." + c.key());
            rf.put("linear", Map.of());
            rf.put("boost", c.weight());
            should.add(Map.of("rank_feature", rf));
        }
        if (should.isEmpty()) {
            return null;
        }
        Map<String, Object> bool = new LinkedHashMap<>();
        bool.put("should", should);
        bool.put("minimum_should_match", 1);
        if (filter != null) {
            bool.put("filter", List.of(filter));
        }
        return Map.of("bool", bool);
    }

    /** Whether the concept branch can search {@code c}: a non-empty, dot-free key (a rank_features sub-field) and a weight > 0. */
    public static boolean searchable(QueryConcept c) {
        return c.key().isEmpty() == false && c.key().indexOf('.') < 0 && c.weight() > 0;
    }

    /** A query builder as a JSON map (to embed the user's query into a branch). */
    public static Map<String, Object> toMap(QueryBuilder query) {
        if (query == null) {
            return null;
        }
        try (XContentBuilder b = JsonXContent.contentBuilder()) {
            query.toXContent(b, org.opensearch.core.xcontent.ToXContent.EMPTY_PARAMS);
            return XContentHelper.convertToMap(BytesReference.bytes(b), true, XContentType.JSON).v2();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static String toJson(Map<String, Object> query) {
        try (XContentBuilder b = JsonXContent.contentBuilder()) {
            b.map(query);
            return BytesReference.bytes(b).utf8ToString();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Parses a branch query with the node's registry.
     *
     * @throws IllegalArgumentException when a query type is unknown on this node (e.g. k-NN not installed)
     */
    public static QueryBuilder parse(Map<String, Object> query, NamedXContentRegistry registry) {
        String json = toJson(query);
        try (XContentParser p = JsonXContent.jsonXContent.createParser(registry, DeprecationHandler.THROW_UNSUPPORTED_OPERATION, json)) {
            return AbstractQueryBuilder.parseInnerQueryBuilder(p);
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("cannot build the SESA branch query " + json.substring(0, Math.min(json.length(), 300))
                + ": " + e.getMessage(), e);
        }
    }
}
