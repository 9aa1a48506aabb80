package org.sesa.opensearch.search;

import java.util.Comparator;

/** Identity of a hit across branches: index name and id. Ordered by index, then id. */
public record DocKey(String index, String id) implements Comparable<DocKey> {

    private static final Comparator<DocKey> ORDER = Comparator.comparing(DocKey::index, Comparator.nullsFirst(Comparator.naturalOrder()))
        .thenComparing(DocKey::id, Comparator.nullsFirst(Comparator.naturalOrder()));

    @Override
    public int compareTo(DocKey o) {
        return ORDER.compare(this, o);
    }
}
