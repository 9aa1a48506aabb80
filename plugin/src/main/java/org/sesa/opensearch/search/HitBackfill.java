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
}
