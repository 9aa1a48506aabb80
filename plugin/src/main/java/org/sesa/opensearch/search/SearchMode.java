package org.sesa.opensearch.search;

import org.sesa.opensearch.util.KeyedEnum;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/** {@code ext.sesa.mode}: one branch alone, or all three fused. */
public enum SearchMode implements KeyedEnum {
    BM25(Branch.BM25),
    DENSE(Branch.DENSE),
    CONCEPTS(Branch.CONCEPTS),
    HYBRID(Branch.BM25, Branch.DENSE, Branch.CONCEPTS);

    private final List<Branch> branches;

    SearchMode(Branch... branches) {
        this.branches = List.of(branches);
    }

    /** The branches this mode runs, in {@link Branch} order; the first one travels in the original request. */
    public List<Branch> branches() {
        return branches;
    }

    public boolean isHybrid() {
        return branches.size() > 1;
    }

    /** Whether the query text must be encoded (every mode except {@code bm25}). */
    public boolean needsEncoding() {
        return this != BM25;
    }

    public Set<Branch> branchSet() {
        return EnumSet.copyOf(branches);
    }

    /** @throws IllegalArgumentException naming {@code what} when {@code value} is not a mode's name */
    public static SearchMode fromKey(String value, String what) {
        return KeyedEnum.fromKey(values(), value, what);
    }
}
