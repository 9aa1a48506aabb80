package org.sesa.opensearch.search;

import org.opensearch.core.action.ActionListener;
import org.opensearch.search.SearchHit;

import java.util.List;
import java.util.Map;

/**
 * Fetches, for hits of the lean branch searches (keys and scores only, see {@link DocKey}), what the user's search
 * would have fetched ({@code _source} and the fields the user asked for). Loading the source of every hit of every
 * window costs more than fetching the few that reach the page (or the rerank head) afterwards.
 */
@FunctionalInterface
public interface HitBackfill {

    /** Answers with the full hit of each key that still exists; a deleted document is absent from the map. */
    void fetch(List<DocKey> keys, ActionListener<Map<DocKey, SearchHit>> listener);

    /**
     * {@link #fetch(List, ActionListener)} of {@code keys}, and, in the same round trip, the best window
     * ({@link Passages#lookup}) of the {@code passagesOnly} hits, which their branch search already fetched: those come
     * back lean (no source, no fields), carrying only the lookup's inner hits. Keys of the two lists are distinct. The
     * default looks nothing up.
     */
    default void fetch(List<DocKey> keys, List<DocKey> passagesOnly, ActionListener<Map<DocKey, SearchHit>> listener) {
        fetch(keys, listener);
    }

    /** Whether {@link #fetch(List, List, ActionListener)} looks up best windows for this search. */
    default boolean looksUpPassages() {
        return false;
    }
}
