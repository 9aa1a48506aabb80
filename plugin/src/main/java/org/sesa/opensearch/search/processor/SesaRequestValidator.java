package org.sesa.opensearch.search.processor;

import org.opensearch.action.search.SearchRequest;
import org.opensearch.search.builder.SearchSourceBuilder;
import org.opensearch.search.sort.ScoreSortBuilder;
import org.opensearch.search.sort.SortBuilder;
import org.sesa.opensearch.search.ext.SesaSearchExt;

/**
 * The gate of {@code sesa_query}: rejects, before any model call or branch search, a request that carries
 * {@code ext.sesa} together with something whose order or paging fusion cannot honour (scroll, pit, search_after,
 * a sort other than {@code _score}, collapse, rescore, min_score, slice). The failure is a 400 that names it.
 * The keys of {@code ext.sesa} itself are checked when it is parsed ({@link SesaSearchExt}).
 */
public final class SesaRequestValidator {

    private SesaRequestValidator() {}

    /**
     * @param request a search request whose source carries {@code ext.sesa}
     * @throws IllegalArgumentException (400) naming the first unsupported part of the request
     */
    public static void validate(SearchRequest request) {
        SearchSourceBuilder s = request.source();
        String what = null;
        if (request.scroll() != null) {
            what = "scroll";
        } else if (s.pointInTimeBuilder() != null) {
            what = "pit";
        } else if (s.searchAfter() != null) {
            what = "search_after";
        } else if (s.sorts() != null && s.sorts().stream().anyMatch(SesaRequestValidator::isNotScoreSort)) {
            what = "sort";
        } else if (s.collapse() != null) {
            what = "collapse";
        } else if (s.rescores() != null && s.rescores().isEmpty() == false) {
            what = "rescore";
        } else if (s.minScore() != null) {
            what = "min_score";
        } else if (s.slice() != null) {
            what = "slice";
        }
        if (what != null) {
            throw new IllegalArgumentException(
                "[ext.sesa] cannot be combined with [" + what + "]: the SESA pipeline orders the hits by fused score and pages with from/size"
            );
        }
    }

    private static boolean isNotScoreSort(SortBuilder<?> sort) {
        return sort instanceof ScoreSortBuilder == false;
    }
}
