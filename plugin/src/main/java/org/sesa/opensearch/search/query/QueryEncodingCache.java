package org.sesa.opensearch.search.query;

import org.sesa.opensearch.index.IndexModels;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A small LRU cache of query encodings, keyed by the models the encoding was checked against and the exact query
 * text. One per {@code sesa_query} processor (so per pipeline and node); {@code capacity} 0 turns it off. Thread-safe.
 *
 * <p>The models are the record of the search's target indices ({@link IndexModels}, {@code _meta.sesa.models.<prefix>};
 * null when they have none), and {@code sesa_query} only puts an encoding under a record it matches. So a search is
 * never served an encoding made with other models than its indices were encoded with: after the server's model
 * changes, a search of an index that records the old model misses the cache, its new Encode call shows the mismatch,
 * and the search is refused; searches of indices with different records never share an entry.
 */
public final class QueryEncodingCache {

    /** @param models the record the encoding matches; null: the targets record none */
    private record Key(IndexModels models, String text) {}

    private final int capacity;
    private final Map<Key, QueryEncoding> map;
    private final AtomicLong hits = new AtomicLong();
    private final AtomicLong misses = new AtomicLong();

    public QueryEncodingCache(int capacity) {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity must be >= 0");
        }
        this.capacity = capacity;
        this.map = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Key, QueryEncoding> eldest) {
                return size() > QueryEncodingCache.this.capacity;
            }
        };
    }

    /**
     * The encoding of {@code queryText} put under the same record, or null (counted as a miss).
     *
     * @param models the record of the search's target indices; null: they record none
     */
    public QueryEncoding get(IndexModels models, String queryText) {
        if (capacity == 0) {
            misses.incrementAndGet();
            return null;
        }
        QueryEncoding e;
        synchronized (map) {
            e = map.get(new Key(models, queryText));
        }
        (e == null ? misses : hits).incrementAndGet();
        return e;
    }

    /** @param models the record {@code encoding} was checked against and matches; null: the targets record none */
    public void put(IndexModels models, String queryText, QueryEncoding encoding) {
        if (capacity == 0) {
            return;
        }
        synchronized (map) {
            map.put(new Key(models, queryText), encoding);
        }
    }

    public int size() {
        synchronized (map) {
            return map.size();
        }
    }

    public int capacity() {
        return capacity;
    }

    public long hits() {
        return hits.get();
    }

    public long misses() {
        return misses.get();
    }
}
