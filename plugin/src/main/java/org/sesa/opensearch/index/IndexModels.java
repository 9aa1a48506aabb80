package org.sesa.opensearch.index;

import org.sesa.inference.v1.EncodeResponse;
import org.sesa.inference.v1.ModelRef;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The models an index records for one target prefix, {@code _meta.<index_meta_key>.models.<prefix>} of its mapping:
 * role ({@code dense}, {@code concepts}) to {@code id@version}. {@code sesa_encode} checks the server's models against
 * it before it writes a document's vectors, {@code sesa_query} before it compares a query's vectors with the
 * documents'. Only the roles the record names are checked; a record that is a plain string names the dense model.
 * Immutable; two records are equal when they name the same roles with the same models.
 *
 * @param refs role to {@code id@version}, sorted by role
 */
public record IndexModels(Map<String, String> refs) {

    public static final String DENSE = "dense";
    public static final String CONCEPTS = "concepts";

    public IndexModels {
        refs = Collections.unmodifiableMap(new TreeMap<>(refs));
    }

    /**
     * Reads a record as the mapping holds it: a string (the dense model) or an object of role to model (each value
     * taken as its string form, as {@code sesa_encode} compares them).
     *
     * @throws IllegalArgumentException for anything else (such a record matches no server)
     */
    public static IndexModels parse(Object raw) {
        if (raw instanceof String s) {
            return new IndexModels(Map.of(DENSE, s));
        }
        if (raw instanceof Map<?, ?> map) {
            Map<String, String> refs = new TreeMap<>();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                refs.put(String.valueOf(e.getKey()), String.valueOf(e.getValue()));
            }
            return new IndexModels(refs);
        }
        throw new IllegalArgumentException(
            "must be an object such as {\"dense\": \"<id>@<version>\", \"concepts\": \"<id>@<version>\"} or a string naming the dense model, got ["
                + raw
                + "]"
        );
    }

    /**
     * {@code {"dense": "id@version", "concepts": "id@version"}}: the models that made an Encode response, in the form
     * {@code <prefix>_model} stores and the records are compared with.
     */
    public static Map<String, String> of(EncodeResponse response) {
        Map<String, String> models = new LinkedHashMap<>();
        models.put(DENSE, ref(response.getDenseModel()));
        models.put(CONCEPTS, ref(response.getConceptModel()));
        return models;
    }

    /** {@code id@version}, or the id alone when the server sends no version. */
    public static String ref(ModelRef ref) {
        return ref.getVersion().isEmpty() ? ref.getId() : ref.getId() + "@" + ref.getVersion();
    }

    /** Whether {@code actual} (as {@link #of} gives it) has this record's model for every role the record names. */
    public boolean matches(Map<String, String> actual) {
        for (Map.Entry<String, String> e : refs.entrySet()) {
            if (Objects.equals(e.getValue(), actual.get(e.getKey())) == false) {
                return false;
            }
        }
        return true;
    }

    /**
     * A record that both this and {@code other} are satisfied by (the union of their roles), or null when they name
     * different models for one role: no single encoding matches both.
     */
    public IndexModels merge(IndexModels other) {
        Map<String, String> merged = new TreeMap<>(refs);
        for (Map.Entry<String, String> e : other.refs.entrySet()) {
            String mine = merged.putIfAbsent(e.getKey(), e.getValue());
            if (mine != null && mine.equals(e.getValue()) == false) {
                return null;
            }
        }
        return new IndexModels(merged);
    }

    @Override
    public String toString() {
        return refs.toString();
    }
}
