package org.sesa.opensearch;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.opensearch.cluster.ClusterState;
import org.opensearch.cluster.metadata.IndexNameExpressionResolver;
import org.opensearch.cluster.node.DiscoveryNodes;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.settings.ClusterSettings;
import org.opensearch.common.settings.IndexScopedSettings;
import org.opensearch.common.settings.Setting;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.settings.SettingsFilter;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.common.util.concurrent.OpenSearchExecutors;
import org.opensearch.core.common.io.stream.NamedWriteableRegistry;
import org.opensearch.core.xcontent.NamedXContentRegistry;
import org.opensearch.env.Environment;
import org.opensearch.env.NodeEnvironment;
import org.opensearch.ingest.Processor;
import org.opensearch.plugins.ActionPlugin;
import org.opensearch.index.mapper.Mapper;
import org.opensearch.index.mapper.MappingTransformer;
import org.opensearch.plugins.IngestPlugin;
import org.opensearch.plugins.MapperPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.SearchPipelinePlugin;
import org.opensearch.plugins.SearchPlugin;
import org.opensearch.repositories.RepositoriesService;
import org.opensearch.rest.RestController;
import org.opensearch.rest.RestHandler;
import org.opensearch.script.ScriptService;
import org.opensearch.search.SearchExtBuilder;
import org.opensearch.search.pipeline.SearchRequestProcessor;
import org.opensearch.search.pipeline.SearchResponseProcessor;
import org.opensearch.threadpool.ExecutorBuilder;
import org.opensearch.threadpool.ThreadPool;
import org.opensearch.transport.client.Client;
import org.opensearch.watcher.ResourceWatcherService;
import org.sesa.opensearch.inference.InferenceClient;
import org.sesa.opensearch.inference.InferenceClientConfig;
import org.sesa.opensearch.inference.NettyChannelFactory;
import org.sesa.opensearch.index.IndexSesaMeta;
import org.sesa.opensearch.index.TargetChunkFields;
import org.sesa.opensearch.index.TargetIndexIds;
import org.sesa.opensearch.index.TargetMappingCheck;
import org.sesa.opensearch.ingest.SesaEncodeProcessor;
import org.sesa.opensearch.ingest.SesaEncodeProcessorFactory;
import org.sesa.opensearch.ingest.SesaTextIngestProcessor;
import org.sesa.opensearch.ingest.SesaTextIngestProcessorFactory;
import org.sesa.opensearch.mapper.SesaTextFieldMapper;
import org.sesa.opensearch.mapper.SesaTextMappingTransformer;
import org.sesa.opensearch.mapper.SesaTextRequestFilter;
import org.sesa.opensearch.rest.RestSesaInfoAction;
import org.sesa.opensearch.search.SesaExtGuard;
import org.sesa.opensearch.search.ext.SesaResponseExt;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.executors.BranchSearcher;
import org.sesa.opensearch.search.executors.ParallelBranchSearcher;
import org.sesa.opensearch.search.executors.SearchConceptStats;
import org.sesa.opensearch.search.processor.SesaFuseProcessor;
import org.sesa.opensearch.search.processor.SesaFuseProcessorFactory;
import org.sesa.opensearch.search.processor.SesaQueryProcessor;
import org.sesa.opensearch.search.processor.SesaQueryProcessorFactory;
import org.sesa.opensearch.search.processor.SesaRerankProcessor;
import org.sesa.opensearch.search.processor.SesaRerankProcessorFactory;
import org.sesa.opensearch.settings.SesaSettings;
import org.sesa.opensearch.util.PluginInfo;

import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Entry point of opensearch-sesa. Wires the single {@link InferenceClient} (created once per node in
 * {@code createComponents}, where the node's {@link ThreadPool} is, and closed with the node) into the ingest
 * processor, the {@code sesa_text} field (its mapper, its mapping transformer and its system ingest processor), the
 * search pipeline processors and the REST info action. The node asks for the processor factories
 * before {@code createComponents}, so they get the client through a supplier; they call it when a pipeline's
 * processors are made, which is after the node has started.
 *
 * <p>Threads: the plugin's work runs in the node's thread pools. {@link #getExecutorBuilders} adds
 * {@code sesa_inference} ({@link SesaSettings#THREAD_POOL}), where the client's callbacks, retries and gRPC offload
 * work run; the side-branch searches and page fetches go through the node client. The only threads the plugin makes
 * itself are gRPC's Netty event loops ({@link NettyChannelFactory} says why).
 */
public class SesaPlugin extends Plugin implements ActionPlugin, IngestPlugin, MapperPlugin, SearchPlugin, SearchPipelinePlugin {

    private static final Logger logger = LogManager.getLogger(SesaPlugin.class);

    private final Settings settings;
    private final Path configPath;
    private volatile TimeValue timeout;
    private volatile TimeValue ingestTimeout;
    private volatile int maxRetries;
    private InferenceClient client;
    private InferenceClientConfig config;
    /** Set by whichever comes first: the ingest processors' parameters or {@code createComponents}. */
    private volatile ClusterService clusterService;
    /** The node's resolver of index expressions, set by {@code createComponents}. */
    private volatile IndexNameExpressionResolver indexNameResolver;
    /**
     * The one reader of the indices' {@code _meta.sesa} (models for ingest and for the search's model check, evidence
     * for search), one cache.
     */
    private final IndexSesaMeta indexMeta = new IndexSesaMeta(this::clusterState, () -> indexNameResolver);
    /** Whether a document's index can hold the SESA fields ({@code sesa_encode} and the sesa_text processor). */
    private final TargetMappingCheck mappingCheck = new TargetMappingCheck(this::clusterState);
    /** Whether a search's target indices hold the windows of a chunked encoding (best-window dense branch). */
    private final TargetChunkFields chunkFields = new TargetChunkFields(this::clusterState, () -> indexNameResolver);

    public SesaPlugin(Settings settings, Path configPath) {
        this.settings = settings;
        this.configPath = configPath;
        this.timeout = SesaSettings.TIMEOUT.get(settings);
        this.ingestTimeout = SesaSettings.INGEST_TIMEOUT.get(settings);
        this.maxRetries = SesaSettings.MAX_RETRIES.get(settings);
    }

    @Override
    public List<Setting<?>> getSettings() {
        return SesaSettings.all();
    }

    /** The plugin's thread pool, {@code sesa_inference} (see {@link SesaSettings#THREAD_POOL}). */
    @Override
    public List<ExecutorBuilder<?>> getExecutorBuilders(Settings settings) {
        return SesaSettings.executorBuilders(settings);
    }

    @Override
    public Map<String, Processor.Factory> getProcessors(Processor.Parameters parameters) {
        useClusterService(parameters.ingestService.getClusterService());
        return Map.of(SesaEncodeProcessor.TYPE, new SesaEncodeProcessorFactory(this::requireClient, indexMeta, mappingCheck));
    }

    /** The processor OpenSearch runs on every document of an index with sesa_text fields, without any pipeline. */
    @Override
    public Map<String, Processor.Factory> getSystemIngestProcessors(Processor.Parameters parameters) {
        useClusterService(parameters.ingestService.getClusterService());
        return Map.of(SesaTextIngestProcessor.TYPE, new SesaTextIngestProcessorFactory(this::requireClient, indexMeta, mappingCheck));
    }

    /** The {@code sesa_text} field type. */
    @Override
    public Map<String, Mapper.TypeParser> getMappers() {
        return Map.of(SesaTextFieldMapper.CONTENT_TYPE, new SesaTextFieldMapper.TypeParser());
    }

    /** Adds the sibling fields of sesa_text fields (and their models record) to the mappings of new indices and templates. */
    @Override
    public List<MappingTransformer> getMappingTransformers() {
        return List.of(new SesaTextMappingTransformer(this::requireClient));
    }

    /**
     * What the sesa_text transformer cannot do on its own: {@code index.knn: true} for new indices and templates with
     * sesa_text fields, and an existing index's {@code _meta} kept when a mapping update adds one.
     */
    @Override
    public List<org.opensearch.action.support.ActionFilter> getActionFilters() {
        return List.of(new SesaTextRequestFilter(this::clusterState, () -> indexNameResolver));
    }

    /** {@code ext.sesa} of a search request. */
    @Override
    public List<SearchExtSpec<?>> getSearchExts() {
        return List.of(new SearchExtSpec<>(SesaSearchExt.NAME, SesaSearchExt::new, SesaSearchExt::parse));
    }

    /** {@code ext.sesa} of a search response (its own writeable name, the request's is taken). */
    @Override
    public List<NamedWriteableRegistry.Entry> getNamedWriteables() {
        return List.of(new NamedWriteableRegistry.Entry(SearchExtBuilder.class, SesaResponseExt.NAME, SesaResponseExt::new));
    }

    /** A search that carries ext.sesa but skipped the pipeline fails instead of running as a plain search. */
    @Override
    public List<org.opensearch.search.fetch.FetchSubPhase> getFetchSubPhases(FetchPhaseConstructionContext context) {
        return List.of(new SesaExtGuard());
    }

    @Override
    public Map<String, org.opensearch.search.pipeline.Processor.Factory<SearchRequestProcessor>> getRequestProcessors(
        SearchPipelinePlugin.Parameters parameters
    ) {
        BranchSearcher searcher = new ParallelBranchSearcher((request, listener) -> parameters.client.search(request, listener));
        return Map.of(
            SesaQueryProcessor.TYPE,
            new SesaQueryProcessorFactory(
                this::requireClient,
                searcher,
                parameters.namedXContentRegistry,
                indexMeta,
                indexMeta,
                chunkFields,
                new SearchConceptStats(searcher, parameters.namedXContentRegistry, new TargetIndexIds(this::clusterState, () -> indexNameResolver))
            )
        );
    }

    @Override
    public Map<String, org.opensearch.search.pipeline.Processor.Factory<SearchResponseProcessor>> getResponseProcessors(
        SearchPipelinePlugin.Parameters parameters
    ) {
        return Map.of(
            SesaFuseProcessor.TYPE,
            new SesaFuseProcessorFactory(indexMeta),
            SesaRerankProcessor.TYPE,
            new SesaRerankProcessorFactory(this::requireClient)
        );
    }

    @Override
    public Collection<Object> createComponents(
        Client client,
        ClusterService clusterService,
        ThreadPool threadPool,
        ResourceWatcherService resourceWatcherService,
        ScriptService scriptService,
        NamedXContentRegistry xContentRegistry,
        Environment environment,
        NodeEnvironment nodeEnvironment,
        NamedWriteableRegistry namedWriteableRegistry,
        IndexNameExpressionResolver indexNameExpressionResolver,
        Supplier<RepositoriesService> repositoriesServiceSupplier
    ) {
        useClusterService(clusterService);
        this.indexNameResolver = indexNameExpressionResolver;
        ClusterSettings cs = clusterService.getClusterSettings();
        cs.addSettingsUpdateConsumer(SesaSettings.TIMEOUT, v -> this.timeout = v);
        cs.addSettingsUpdateConsumer(SesaSettings.INGEST_TIMEOUT, v -> this.ingestTimeout = v);
        cs.addSettingsUpdateConsumer(SesaSettings.MAX_RETRIES, v -> this.maxRetries = v);
        InferenceClient c = inferenceClient(environment.settings(), environment.configDir(), threadPool);
        return List.of(c);
    }

    @Override
    public List<RestHandler> getRestHandlers(
        Settings settings,
        RestController restController,
        ClusterSettings clusterSettings,
        IndexScopedSettings indexScopedSettings,
        SettingsFilter settingsFilter,
        IndexNameExpressionResolver indexNameExpressionResolver,
        Supplier<DiscoveryNodes> nodesInCluster
    ) {
        return List.of(new RestSesaInfoAction(this::requireClient));
    }

    private void useClusterService(ClusterService service) {
        if (clusterService == null && service != null) {
            clusterService = service;
        }
    }

    /** The node's applied cluster state; null before the node knows its cluster service. */
    private ClusterState clusterState() {
        ClusterService service = clusterService;
        return service == null ? null : service.state();
    }

    private synchronized InferenceClient requireClient() {
        if (client == null) {
            throw new IllegalStateException("sesa inference client is not initialised yet");
        }
        return client;
    }

    /**
     * Creates the node's one client (once); settings problems surface here, at node start. Its callbacks and retries
     * run on the node's {@code sesa_inference} pool; the Netty event loops are daemon threads of their own.
     */
    private synchronized InferenceClient inferenceClient(Settings nodeSettings, Path configDir, ThreadPool threadPool) {
        if (client == null) {
            config = InferenceClientConfig.fromSettings(nodeSettings, configDir != null ? configDir : configPath);
            int processors = OpenSearchExecutors.allocatedProcessors(nodeSettings);
            NettyChannelFactory channels = new NettyChannelFactory(
                config.tls(),
                Math.max(1, Math.min(2, processors)),
                OpenSearchExecutors.daemonThreadFactory(nodeSettings, SesaSettings.THREAD_POOL + "_event_loop"),
                PluginInfo.name() + "/" + PluginInfo.version()
            );
            channels.validate();
            client = InferenceClient.builder(config.endpoints(), channels, threadPool.getThreadContext())
                .defaultTimeout(() -> timeout)
                .ingestTimeout(() -> ingestTimeout)
                .maxRetries(() -> maxRetries)
                .authToken(config.authToken())
                .threadPool(threadPool, SesaSettings.THREAD_POOL)
                .build();
            if (config.authToken() != null && config.tls() == null) {
                logger.warn("[{}] is set but TLS is disabled: the token travels in clear text", SesaSettings.AUTH_TOKEN.getKey());
            }
            logger.info("sesa inference client configured: {}", config);
        }
        return client;
    }

    @Override
    public void close() {
        InferenceClient c;
        synchronized (this) {
            c = client;
        }
        if (c != null) {
            c.close();
        }
    }
}
