package org.sesa.opensearch.search;

import org.opensearch.core.action.ActionListener;

import java.util.ArrayList;
import java.util.List;

/**
 * A one-shot result that may be waited for after it arrived: {@code sesa_query} starts the side branches'
 * msearch and {@code sesa_fuse} subscribes when the main branch is done. Unlike a wrapping listener, a
 * subscriber's own exception is never fed back into it as a failure.
 */
public final class PendingResult<T> implements ActionListener<T> {

    private final List<ActionListener<T>> waiting = new ArrayList<>();
    private boolean done;
    private T value;
    private Exception failure;

    @Override
    public void onResponse(T response) {
        complete(response, null);
    }

    @Override
    public void onFailure(Exception e) {
        complete(null, e);
    }

    private void complete(T response, Exception e) {
        List<ActionListener<T>> toNotify;
        synchronized (this) {
            if (done) {
                return;
            }
            done = true;
            value = response;
            failure = e;
            toNotify = new ArrayList<>(waiting);
            waiting.clear();
        }
        for (ActionListener<T> l : toNotify) {
            notify(l, response, e);
        }
    }

    /** Calls {@code listener} once the result is there (at once, on this thread, if it already is). */
    public void whenDone(ActionListener<T> listener) {
        T v;
        Exception f;
        synchronized (this) {
            if (done == false) {
                waiting.add(listener);
                return;
            }
            v = value;
            f = failure;
        }
        notify(listener, v, f);
    }

    public synchronized boolean isDone() {
        return done;
    }

    private static <T> void notify(ActionListener<T> l, T v, Exception f) {
        if (f != null) {
            l.onFailure(f);
        } else {
            l.onResponse(v);
        }
    }
}
