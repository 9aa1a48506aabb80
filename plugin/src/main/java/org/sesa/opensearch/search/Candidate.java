package org.sesa.opensearch.search;

import org.opensearch.common.xcontent.XContentHelper;
import org.opensearch.core.common.bytes.BytesReference;
import org.opensearch.core.xcontent.DeprecationHandler;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.core.xcontent.XContentParser;
import org.opensearch.search.SearchHit;

import java.io.IOException;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;

/**
 * One document of the fused candidate set: the hit it was first seen in (the main branch wins, it carries
 * highlights), its raw branch scores and ranks, the fused score and, after {@code sesa_rerank}, the rerank score.
 * A candidate whose hit came from a lean branch search is {@linkplain #partial() partial} (key and score, no
 * source or fields) until {@link SesaSearchPlan#completeHead} replaces its hit with the fetched one.
 */
public final class Candidate {

    private final DocKey key;
    private final SearchHit hit;
    private final BytesReference fetchedSource;
    private final Float[] raw;
    private final int[] ranks;
    private final double fused;
    private final boolean partial;
    private final Passages.Lookup passageLookup;
    private Map<String, Object> sourceMap;
    private boolean sourceParsed;

    /** @param partial the hit carries the id and score only; its source and fields are still to be fetched */
    public Candidate(DocKey key, SearchHit hit, Float[] raw, int[] ranks, double fused, boolean partial) {
        this(key, hit, raw, ranks, fused, partial, Passages.Lookup.NOT_LOOKED_UP);
    }

    private Candidate(DocKey key, SearchHit hit, Float[] raw, int[] ranks, double fused, boolean partial, Passages.Lookup passageLookup) {
        this.passageLookup = passageLookup;
        this.partial = partial;
        this.key = key;
        this.hit = hit;
        this.fetchedSource = hit.getSourceRef();
        this.raw = raw.clone();
        this.ranks = ranks.clone();
        this.fused = fused;
    }

    /**
     * The same candidate with the fully fetched hit (the partial hit's Lucene explanation and matched queries are kept),
     * and the best window its fetch looked up, if any ({@link Passages#lookedUp}: the lookup's inner hits are taken off
     * the hit).
     *
     * @param chunksField {@code <prefix>_chunks}
     */
    public Candidate withFetchedHit(SearchHit full, String chunksField) {
        Passages.Lookup lookup = Passages.lookedUp(full, chunksField);
        if (full.getExplanation() == null && hit.getExplanation() != null) {
            full.explanation(hit.getExplanation());
        }
        if (hit.getMatchedQueries().length > 0) { // the user's named queries matched in the branch search
            full.matchedQueries(hit.getMatchedQueries());
        }
        return new Candidate(key, full, raw, ranks, fused, false, lookup);
    }

    /** The same candidate with the best window a lean lookup of its (already complete) hit found. */
    public Candidate withPassageLookup(Passages.Lookup lookup) {
        return lookup.looked() ? new Candidate(key, hit, raw, ranks, fused, partial, lookup) : this;
    }

    /** The best window the fetch of this candidate's hit looked up ({@link Passages#lookup}), or that it did not. */
    public Passages.Lookup passageLookup() {
        return passageLookup;
    }

    /** Whether the hit still lacks what the user asked to fetch (it came from a lean branch search). */
    public boolean partial() {
        return partial;
    }

    public DocKey key() {
        return key;
    }

    public SearchHit hit() {
        return hit;
    }

    /** Raw score of {@code b}, null when the document was not in that branch's window. */
    public Float raw(Branch b) {
        return raw[b.ordinal()];
    }

    /** 1-based rank in {@code b}'s window, 0 when absent. */
    public int rank(Branch b) {
        return ranks[b.ordinal()];
    }

    public double fused() {
        return fused;
    }

    /**
     * The top-level source fields that {@code paths} (dotted, as {@link org.opensearch.common.xcontent.support.XContentMapValues#extractValue}
     * reads them) run through, parsed from the fetched {@code _source} without materialising the rest: the source
     * also holds the dense vector, hundreds of numbers that explanations and rerank never read. Null when no
     * source was fetched; the full map once {@link #source()} has parsed it.
     */
    public Map<String, Object> sourceFields(Collection<String> paths) {
        synchronized (this) {
            if (sourceParsed) {
                return sourceMap;
            }
        }
        if (fetchedSource == null) {
            return null;
        }
        Map<String, Object> out = new HashMap<>();
        try (
            XContentParser p = XContentHelper.createParser(NamedXContentRegistry.EMPTY, DeprecationHandler.THROW_UNSUPPORTED_OPERATION, fetchedSource)
        ) {
            if (p.nextToken() != XContentParser.Token.START_OBJECT) {
                return source();
            }
            for (XContentParser.Token t = p.nextToken(); t == XContentParser.Token.FIELD_NAME; t = p.nextToken()) {
                String name = p.currentName();
                XContentParser.Token value = p.nextToken();
                if (wanted(name, paths) == false) {
                    p.skipChildren();
                } else if (value == XContentParser.Token.START_OBJECT) {
                    out.put(name, p.map());
                } else if (value == XContentParser.Token.START_ARRAY) {
                    out.put(name, p.list());
                } else {
                    out.put(name, p.objectText());
                }
            }
        } catch (IOException | RuntimeException e) {
            return source(); // let the full parse report a malformed source the way it always did
        }
        return out;
    }

    private static boolean wanted(String topLevel, Collection<String> paths) {
        for (String path : paths) {
            if (path.equals(topLevel) || path.startsWith(topLevel + ".")) {
                return true;
            }
        }
        return false;
    }

    /** The fetched {@code _source} as a map (null when none was fetched); parsed once. */
    public synchronized Map<String, Object> source() {
        if (sourceParsed == false) {
            sourceParsed = true;
            sourceMap = fetchedSource == null ? null : XContentHelper.convertToMap(fetchedSource, false).v2();
        }
        return sourceMap;
    }
}
