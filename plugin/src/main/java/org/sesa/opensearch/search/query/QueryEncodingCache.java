package org.sesa.opensearch.search.query;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A small LRU cache of query encodings, keyed by the exact query text. One per {@code sesa_query}
 * processor (so per pipeline and node); {@code capacity} 0 turns it off. Thread-safe.
 */
public final class QueryEncodingCache {

    private final int capacity;
    private final Map<String, QueryEncoding> map;
    private final AtomicLong hits = new AtomicLong();
    private final AtomicLong misses = new AtomicLong();

    public QueryEncodingCache(int capacity) {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity must be >= 0");
        }
        this.capacity = capacity;
        this.map = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, QueryEncoding> eldest) {
                return size() > QueryEncodingCache.this.capacity;
            }
        };
    }

    /** The cached encoding, or null (counted as a miss). */
    public QueryEncoding get(String queryText) {
        if (capacity == 0) {
            misses.incrementAndGet();
            return null;
        }
        QueryEncoding e;
        synchronized (map) {
            e = map.get(queryText);
        }
        (e == null ? misses : hits).incrementAndGet();
        return e;
    }

    public void put(String queryText, QueryEncoding encoding) {
        if (capacity == 0) {
            return;
        }
        synchronized (map) {
            map.put(queryText, encoding);
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
