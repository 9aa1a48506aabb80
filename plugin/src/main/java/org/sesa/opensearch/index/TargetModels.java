package org.sesa.opensearch.index;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

/**
 * What the target indices of one search record about the models of a target prefix ({@link IndexModels}): the record
 * a query encoding must match to be compared with their documents' vectors, or why no encoding can.
 *
 * @param expected the record the encoding must match (the union of the indices' records); null when no target index
 *                 has one (an old index, or one written by another tool): nothing is checked
 * @param indices  the target indices that have a record, sorted
 * @param conflict why no encoding can match them all (records that name different models for one role, or one that
 *                 cannot be read); null when one can
 */
public record TargetModels(IndexModels expected, List<String> indices, String conflict) {

    /** No target index records its models. */
    public static final TargetModels NONE = new TargetModels(null, List.of(), null);

    public TargetModels {
        indices = List.copyOf(indices);
    }

    /**
     * Combines the records of the target indices.
     *
     * @param recorded concrete index name to its raw {@code _meta.<metaKey>.models.<prefix>} value, for the indices
     *                 that have one
     * @param where    the record's path in the mapping, for the reasons, e.g. {@code _meta.sesa.models.sesa}
     */
    public static TargetModels of(SortedMap<String, Object> recorded, String where) {
        if (recorded.isEmpty()) {
            return NONE;
        }
        IndexModels merged = null;
        boolean differ = false;
        List<String> described = new ArrayList<>();
        for (Map.Entry<String, Object> e : recorded.entrySet()) {
            IndexModels one;
            try {
                one = IndexModels.parse(e.getValue());
            } catch (IllegalArgumentException ex) {
                return new TargetModels(null, List.copyOf(recorded.keySet()), "index [" + e.getKey() + "] has an unreadable [" + where + "]: " + ex.getMessage());
            }
            described.add("[" + e.getKey() + "] " + one);
            if (merged == null) {
                merged = one;
            } else if (differ == false) {
                IndexModels both = merged.merge(one);
                if (both == null) {
                    differ = true;
                } else {
                    merged = both;
                }
            }
        }
        List<String> indices = List.copyOf(recorded.keySet());
        if (differ) {
            return new TargetModels(null, indices, "the target indices were encoded with different models (" + where + "): " + String.join(", ", described));
        }
        return new TargetModels(merged, indices, null);
    }

    /** The target indices that have a record, joined with commas. */
    public String indexList() {
        return String.join(",", indices);
    }
}
