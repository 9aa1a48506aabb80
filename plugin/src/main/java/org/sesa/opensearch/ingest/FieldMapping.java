package org.sesa.opensearch.ingest;

import org.sesa.opensearch.util.SesaFieldNames;

import java.util.List;

/**
 * One {@code field_map} entry: the source field(s) whose text is encoded (joined with the separator)
 * and the output fields derived from the target prefix.
 */
public record FieldMapping(List<String> sourceFields, SesaFieldNames target) {

    public FieldMapping {
        sourceFields = List.copyOf(sourceFields);
    }

    public String prefix() {
        return target.prefix();
    }
}
