package org.sesa.opensearch.index;

import org.sesa.opensearch.mapper.MappingMaps;
import org.sesa.opensearch.util.SesaFieldNames;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Whether an index can hold the fields written for one target prefix ({@link SesaFieldNames}), and if not, why: every
 * output field that is not mapped, or mapped otherwise than SESA needs, with what it is and what it must be.
 *
 * <ul>
 *   <li>{@code <p>_dense}: {@code knn_vector}, {@code method.engine: lucene}, with the dimension of the server's
 *       encoder (that part is checked against each Encode response, {@link #dimensionProblem});</li>
 *   <li>{@code <p>_concepts}: {@code rank_features} (a dynamic mapping would make one float field per concept);</li>
 *   <li>{@code <p>_concept_labels}, {@code <p>_model.dense}, {@code <p>_model.concepts}, {@code <p>_status}:
 *       {@code keyword};</li>
 *   <li>{@code <p>_truncated}: {@code boolean}.</li>
 * </ul>
 * With chunking ({@code sesa_encode} option {@code chunking}) also:
 * <ul>
 *   <li>{@code <p>_chunks}: {@code nested}, with {@code dense} a {@code knn_vector} ({@code method.engine: lucene},
 *       the same dimension as {@code <p>_dense}) and {@code start}/{@code end} {@code integer};</li>
 *   <li>{@code <p>_coverage}: {@code float}.</li>
 * </ul>
 *
 * @param where     the mapping that was checked, for messages, e.g. {@code index [docs]} or
 *                  {@code index [docs] (not created yet; index template [t] would map it)}
 * @param problems  what is wrong with the fields, in field order; empty when they fit
 * @param dimension the {@code dimension} of {@code <p>_dense} when it is a knn_vector that has one, else null
 */
public record MappingVerdict(String where, List<String> problems, Integer dimension) {

    public static final String KNN_VECTOR = "knn_vector";
    public static final String LUCENE = "lucene";
    public static final String RANK_FEATURES = "rank_features";
    public static final String KEYWORD = "keyword";
    public static final String BOOLEAN = "boolean";
    public static final String INTEGER = "integer";
    public static final String FLOAT = "float";

    /** Nothing to check (no cluster state yet, or an alias without a write index, whose write fails on its own). */
    public static final MappingVerdict UNCHECKED = new MappingVerdict("", List.of(), null);

    public MappingVerdict {
        problems = List.copyOf(problems);
    }

    public boolean fits() {
        return problems.isEmpty();
    }

    /**
     * Checks the fields of {@code names} in {@code properties} (the top-level {@code properties} of a mapping).
     *
     * @param preamble a first problem to report before the field ones (e.g. why there is no mapping at all), or null
     */
    public static MappingVerdict of(String where, Map<String, Object> properties, SesaFieldNames names, String preamble) {
        return of(where, properties, names, preamble, false);
    }

    /**
     * As {@link #of(String, Map, SesaFieldNames, String)}; with {@code chunks} also the fields of a chunked encoding
     * ({@code <p>_chunks}, {@code <p>_coverage}).
     */
    public static MappingVerdict of(String where, Map<String, Object> properties, SesaFieldNames names, String preamble, boolean chunks) {
        List<String> problems = new ArrayList<>();
        if (preamble != null) {
            problems.add(preamble);
        }
        Integer dimension = null;
        Map<String, Object> dense = MappingMaps.field(properties, names.dense());
        String denseRule = "must be [" + KNN_VECTOR + "] with method.engine [" + LUCENE + "] and the dimension of the inference server's encoder";
        if (dense == null || KNN_VECTOR.equals(dense.get(MappingMaps.TYPE)) == false) {
            problems.add(is(names.dense(), dense) + ", " + denseRule);
        } else {
            dimension = dimensionOf(dense.get("dimension"));
            if (dimension == null) {
                problems.add("[" + names.dense() + "] is a knn_vector without a dimension [" + dense.get("dimension") + "], " + denseRule);
            }
            Object engine = dense.get("method") instanceof Map<?, ?> method ? method.get("engine") : null;
            if (LUCENE.equals(engine) == false) {
                String has = engine == null
                    ? (dense.containsKey("model_id") ? "a model_id instead of a method" : "no method.engine (the k-NN default engine is faiss)")
                    : "method.engine [" + engine + "]";
                problems.add("[" + names.dense() + "] is a knn_vector with " + has + ", must have method.engine [" + LUCENE + "]");
            }
        }
        expect(problems, properties, names.concepts(), RANK_FEATURES, " (mapped dynamically, every concept key would become a float field of its own)");
        expect(problems, properties, names.conceptLabels(), KEYWORD, "");
        expect(problems, properties, names.model() + ".dense", KEYWORD, "");
        expect(problems, properties, names.model() + ".concepts", KEYWORD, "");
        expect(problems, properties, names.truncated(), BOOLEAN, "");
        expect(problems, properties, names.status(), KEYWORD, "");
        if (chunks) {
            chunkProblems(problems, properties, names, dimension);
        }
        return new MappingVerdict(where, problems, dimension);
    }

    private static void chunkProblems(List<String> problems, Map<String, Object> properties, SesaFieldNames names, Integer dimension) {
        Map<String, Object> chunks = MappingMaps.field(properties, names.chunks());
        String chunksRule = "must be [" + MappingMaps.NESTED + "] with [dense] a [" + KNN_VECTOR + "] (method.engine [" + LUCENE
            + "], the dimension of [" + names.dense() + "]) and [start], [end] [" + INTEGER + "] (chunking is on)";
        if (chunks == null || MappingMaps.NESTED.equals(chunks.get(MappingMaps.TYPE)) == false) {
            problems.add(is(names.chunks(), chunks) + ", " + chunksRule);
        } else {
            Map<String, Object> sub = chunks.get(MappingMaps.PROPERTIES) instanceof Map<?, ?> m ? castMap(m) : Map.of();
            Map<String, Object> dense = MappingMaps.field(sub, "dense");
            String path = names.chunksDense();
            if (dense == null || KNN_VECTOR.equals(dense.get(MappingMaps.TYPE)) == false) {
                problems.add(is(path, dense) + ", must be [" + KNN_VECTOR + "] with method.engine [" + LUCENE + "]");
            } else {
                Object engine = dense.get("method") instanceof Map<?, ?> method ? method.get("engine") : null;
                if (LUCENE.equals(engine) == false) {
                    problems.add("[" + path + "] is a knn_vector with method.engine [" + engine + "], must have method.engine [" + LUCENE + "]");
                }
                Integer d = dimensionOf(dense.get("dimension"));
                if (d == null || (dimension != null && d.equals(dimension) == false)) {
                    problems.add(
                        "[" + path + "] is a knn_vector of dimension [" + dense.get("dimension") + "], must have the dimension of ["
                            + names.dense() + "] [" + dimension + "]"
                    );
                }
            }
            for (String bound : List.of("start", "end")) {
                Map<String, Object> f = MappingMaps.field(sub, bound);
                if (f == null || INTEGER.equals(f.get(MappingMaps.TYPE)) == false) {
                    problems.add(is(names.chunks() + "." + bound, f) + ", must be [" + INTEGER + "]");
                }
            }
        }
        expect(problems, properties, names.coverage(), FLOAT, " (chunking is on)");
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> castMap(Map<?, ?> m) {
        return (Map<String, Object>) m;
    }

    private static void expect(List<String> problems, Map<String, Object> properties, String path, String type, String why) {
        Map<String, Object> field = MappingMaps.field(properties, path);
        if (field == null || type.equals(field.get(MappingMaps.TYPE)) == false) {
            problems.add(is(path, field) + ", must be [" + type + "]" + why);
        }
    }

    private static String is(String path, Map<String, Object> field) {
        return field == null ? "[" + path + "] is not mapped" : "[" + path + "] is mapped as [" + MappingMaps.describe(field) + "]";
    }

    private static Integer dimensionOf(Object raw) {
        if (raw instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) && n.intValue() > 0) {
            return n.intValue();
        }
        if (raw instanceof String s) {
            try {
                int d = Integer.parseInt(s.trim());
                return d > 0 ? d : null;
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }

    /**
     * Why vectors of {@code actual} dimensions (what the server returned) cannot go into {@code <p>_dense}, or null
     * when they can (or nothing is known about the mapped dimension).
     */
    public String dimensionProblem(String denseField, int actual) {
        if (dimension == null || dimension == actual) {
            return null;
        }
        return String.format(
            Locale.ROOT,
            "[%s] is a knn_vector of dimension [%d], but the inference server's encoder makes vectors of dimension [%d]",
            denseField,
            dimension,
            actual
        );
    }
}
