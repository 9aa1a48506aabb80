package org.sesa.opensearch.search;

import org.sesa.opensearch.util.KeyedEnum;

/** One retrieval branch of a SESA search. The order of the constants is the order of explanations and fusion inputs. */
public enum Branch implements KeyedEnum {
    /** {@code multi_match} over the text fields. */
    BM25,
    /** {@code knn} on {@code <prefix>_dense}. */
    DENSE,
    /** {@code rank_feature} clauses on {@code <prefix>_concepts} (a dot product of concept weights). */
    CONCEPTS;

    /** @throws IllegalArgumentException naming {@code what} when {@code value} is not a branch name */
    public static Branch fromKey(String value, String what) {
        Branch b = KeyedEnum.find(values(), value);
        if (b == null) {
            throw new IllegalArgumentException(
                "[" + what + "] has unknown branch [" + value + "]: expected one of " + KeyedEnum.keys(values())
            );
        }
        return b;
    }
}
