package org.sesa.opensearch;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.opensearch.common.settings.Setting;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.threadpool.ExecutorBuilder;
import org.opensearch.threadpool.ThreadPool;
import org.sesa.opensearch.settings.SesaSettings;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the plugin adds to the node besides its processors: its thread pool. */
class SesaPluginTests {

    private final List<ThreadPool> pools = new ArrayList<>();

    @AfterEach
    void terminate() {
        for (ThreadPool tp : pools) {
            ThreadPool.terminate(tp, 10, TimeUnit.SECONDS);
        }
    }

    /** The node's thread pool, made as the node makes it: with the plugin's executor builders. */
    private ThreadPool node(Settings settings) {
        Settings withName = Settings.builder().put(settings).put("node.name", "sesa-test").build();
        List<ExecutorBuilder<?>> builders = new SesaPlugin(withName, null).getExecutorBuilders(withName);
        ThreadPool tp = new ThreadPool(withName, builders.toArray(new ExecutorBuilder<?>[0]));
        pools.add(tp);
        return tp;
    }

    @Test
    void thePluginDeclaresItsThreadPool() {
        List<ExecutorBuilder<?>> builders = new SesaPlugin(Settings.EMPTY, null).getExecutorBuilders(Settings.EMPTY);
        assertEquals(1, builders.size());
        Set<String> keys = builders.get(0).getRegisteredSettings().stream().map(Setting::getKey).collect(Collectors.toSet());
        assertEquals(Set.of("thread_pool.sesa_inference.core", "thread_pool.sesa_inference.max", "thread_pool.sesa_inference.keep_alive"), keys);
        for (Setting<?> s : SesaSettings.all()) {
            assertTrue(keys.contains(s.getKey()) == false, "registered once, by the builder: " + s.getKey());
        }

        ThreadPool.Info info = node(Settings.builder().put("node.processors", 4).build()).info(SesaSettings.THREAD_POOL);
        assertEquals(SesaSettings.THREAD_POOL, info.getName());
        assertEquals(ThreadPool.ThreadPoolType.SCALING, info.getThreadPoolType(), "scaling: a callback is never rejected");
        assertEquals(1, info.getMin());
        assertEquals(4, info.getMax(), "the allocated processors");
        assertEquals(TimeValue.timeValueMinutes(5), info.getKeepAlive());
    }

    @Test
    void theThreadPoolIsSizedBySettings() {
        assertEquals(2, node(Settings.builder().put("node.processors", 1).build()).info(SesaSettings.THREAD_POOL).getMax(), "at least 2");
        assertEquals(8, node(Settings.builder().put("node.processors", 32).build()).info(SesaSettings.THREAD_POOL).getMax(), "at most 8 by default");
        ThreadPool.Info set = node(
            Settings.builder().put("node.processors", 32).put("thread_pool.sesa_inference.max", 12).put("thread_pool.sesa_inference.core", 2).build()
        ).info(SesaSettings.THREAD_POOL);
        assertEquals(12, set.getMax());
        assertEquals(2, set.getMin());
    }
}
