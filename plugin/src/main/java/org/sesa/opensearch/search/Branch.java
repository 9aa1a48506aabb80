package org.sesa.opensearch.search;

import java.util.Locale;

/** One retrieval branch of a SESA search. The order of the constants is the order of explanations and fusion inputs. */
public enum Branch {
    /** {@code multi_match} over the text fields. */
    BM25,
    /** {@code knn} on {@code <prefix>_dense}. */
    DENSE,
    /** {@code rank_feature} clauses on {@code <prefix>_concepts} (a dot product of concept weights). */
    CONCEPTS;

    /** The name used in {@code ext.sesa}, {@code weights} and {@code fields._sesa}. */
    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** @throws IllegalArgumentException naming {@code what} when {@code value} is not a branch name */
    public static Branch fromKey(String value, String what) {
        for (Branch b : values()) {
            if (b.key().equals(value)) {
                return b;
            }
        }
        throw new IllegalArgumentException("[" + what + "] has unknown branch [" + value + "]: expected one of [bm25, dense, concepts]");
    }
}
