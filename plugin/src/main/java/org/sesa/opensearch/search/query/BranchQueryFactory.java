package org.sesa.opensearch.search.query;

import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.index.query.QueryBuilder;
import org.sesa.opensearch.mapper.SesaTextFieldMapper;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The branch queries of one search: the {@code sesa_query} settings that shape them (text fields, target prefix,
 * k-NN {@code k}) applied to the request's query text, its encoding and the user's {@code query}. {@link BranchQueries}
 * writes each query's JSON; this class picks the mode's branches and parses them with the node's registry.
 *
 * @param textFields fields of the BM25 {@code multi_match} ({@code field^boost} allowed)
 * @param names      the target prefix's field names ({@code <prefix>_dense}, {@code <prefix>_concepts})
 * @param knnK       {@code k} of the k-NN query
 * @param registry   the node's registry, to parse knn and rank_feature queries
 * @param chunks     whether the target indices hold {@code <prefix>_chunks}: the dense branch then scores each document
 *                   by its best window ({@link BranchQueries#denseBestWindow})
 */
public record BranchQueryFactory(List<String> textFields, SesaFieldNames names, int knnK, NamedXContentRegistry registry, boolean chunks) {

    public BranchQueryFactory {
        textFields = List.copyOf(textFields);
        Objects.requireNonNull(names);
        Objects.requireNonNull(registry);
    }

    /** Branch queries for indices without chunks. */
    public BranchQueryFactory(List<String> textFields, SesaFieldNames names, int knnK, NamedXContentRegistry registry) {
        this(textFields, names, knnK, registry, false);
    }

    /** This factory, with the dense branch on the best window ({@code true}) or on {@code <prefix>_dense} only. */
    public BranchQueryFactory withChunks(boolean chunks) {
        return chunks == this.chunks ? this : new BranchQueryFactory(textFields, names, knnK, registry, chunks);
    }

    /**
     * The branch queries of a search of the {@code sesa_text} field at {@code path}: BM25 on the field itself, dense and
     * concepts on its {@code <path>_sesa_*} siblings, with this factory's k-NN {@code k}.
     */
    public BranchQueryFactory forSesaText(String path) {
        return new BranchQueryFactory(List.of(path), SesaFieldNames.forPrefix(SesaTextFieldMapper.targetPrefix(path)), knnK, registry);
    }

    /** The branch queries of the mode; a branch the query cannot fill (no vector, no concepts) is left out. */
    public Map<Branch, QueryBuilder> build(SesaSearchExt ext, QueryEncoding encoding, QueryBuilder userQuery) {
        Map<String, Object> filter = BranchQueries.toMap(userQuery);
        Map<Branch, QueryBuilder> out = new EnumMap<>(Branch.class);
        for (Map.Entry<Branch, Map<String, Object>> e : json(ext, encoding, filter).entrySet()) {
            out.put(e.getKey(), BranchQueries.parse(e.getValue(), registry));
        }
        return out;
    }

    /** One branch's query, parsed; null when the query cannot fill it (no vector, no concepts). */
    public QueryBuilder build(Branch branch, SesaSearchExt ext, QueryEncoding encoding, QueryBuilder userQuery) {
        Map<String, Object> json = json(branch, ext, encoding, BranchQueries.toMap(userQuery));
        return json == null ? null : BranchQueries.parse(json, registry);
    }

    /** The branch queries as JSON (what {@link #build} parses). */
    public Map<Branch, Map<String, Object>> json(SesaSearchExt ext, QueryEncoding encoding, Map<String, Object> filter) {
        Map<Branch, Map<String, Object>> out = new EnumMap<>(Branch.class);
        for (Branch b : ext.mode().branches()) {
            Map<String, Object> json = json(b, ext, encoding, filter);
            if (json != null) {
                out.put(b, json);
            }
        }
        return out;
    }

    private Map<String, Object> json(Branch b, SesaSearchExt ext, QueryEncoding encoding, Map<String, Object> filter) {
        return switch (b) {
            case BM25 -> BranchQueries.bm25(ext.queryText(), textFields, filter);
            case DENSE -> encoding == null || encoding.dense().length == 0
                ? null
                : chunks
                    ? BranchQueries.denseBestWindow(names.dense(), names.chunks(), encoding.dense(), knnK, filter)
                : BranchQueries.dense(names.dense(), encoding.dense(), knnK, filter);
            case CONCEPTS -> encoding == null ? null : BranchQueries.concepts(names.concepts(), encoding.scoringConcepts(), filter);
        };
    }
}
