package org.sesa.opensearch.search.processor;

import org.opensearch.ingest.ConfigurationUtils;
import org.opensearch.search.pipeline.SearchResponseProcessor;
import org.sesa.opensearch.index.IndexEvidenceLookup;
import org.sesa.opensearch.search.Branch;
import org.sesa.opensearch.search.ext.SesaSearchExt;
import org.sesa.opensearch.search.fusion.FusionSettings;
import org.sesa.opensearch.search.fusion.FusionTechnique;
import org.sesa.opensearch.util.KeyedEnum;

import java.util.EnumMap;
import java.util.Map;

import static org.opensearch.ingest.ConfigurationUtils.newConfigurationException;

/** Parses and validates a {@code sesa_fuse} definition at pipeline creation. */
public final class SesaFuseProcessorFactory extends AbstractSesaProcessorFactory<SearchResponseProcessor, SesaFuseProcessor> {

    // each option's key, then its default where it has one (min_range's is FusionSettings.DEFAULT_MIN_RANGE)
    public static final String TECHNIQUE = "technique";
    /**
     * z_score: measured through the cluster on the mean of all shared sets, it never lost to min_max and raised the
     * mean gain over BM25 (plugin/README.md, fusion rules).
     */
    public static final FusionTechnique DEFAULT_TECHNIQUE = FusionTechnique.Z_SCORE;
    public static final String WEIGHTS = "weights";
    /** The evidence-free default: the concept branch explains, it does not score (issue 19). */
    public static final Map<Branch, Double> DEFAULT_WEIGHTS = Map.of(Branch.BM25, 0.5, Branch.DENSE, 0.5, Branch.CONCEPTS, 0.0);
    public static final String RANK_CONSTANT = "rank_constant";
    public static final int DEFAULT_RANK_CONSTANT = 60;
    public static final String MIN_RANGE = "min_range";
    public static final String CONCEPTS_OUT_OF_DOMAIN = "concepts_out_of_domain";
    /** {@code concepts_out_of_domain} values: fuse without the concept branch, or with it. */
    public static final String DROP = "drop";
    public static final String KEEP = "keep";

    private final IndexEvidenceLookup evidence;

    /** @param evidence the indices' evidence records ({@link IndexEvidenceLookup#NONE}: never any) */
    public SesaFuseProcessorFactory(IndexEvidenceLookup evidence) {
        this.evidence = evidence;
    }

    @Override
    SesaFuseProcessor newProcessor(String tag, String description, boolean ignoreFailure, Map<String, Object> config) {
        String type = SesaFuseProcessor.TYPE;
        String t = ConfigurationUtils.readStringProperty(type, tag, config, TECHNIQUE, DEFAULT_TECHNIQUE.key());
        FusionTechnique technique = KeyedEnum.find(FusionTechnique.values(), t);
        if (technique == null) {
            throw newConfigurationException(type, tag, TECHNIQUE, "must be one of " + FusionTechnique.keys() + ", got [" + t + "]");
        }
        Map<Branch, Double> weights = new EnumMap<>(DEFAULT_WEIGHTS);
        Object w = config.remove(WEIGHTS);
        if (w != null) {
            try {
                Map<Branch, Double> given = SesaSearchExt.parseWeights(w, WEIGHTS);
                weights = new EnumMap<>(Branch.class);
                for (Branch b : Branch.values()) {
                    weights.put(b, given.getOrDefault(b, 0.0));
                }
            } catch (IllegalArgumentException e) {
                throw newConfigurationException(type, tag, WEIGHTS, e.getMessage());
            }
            if (weights.values().stream().mapToDouble(Double::doubleValue).sum() <= 0) {
                throw newConfigurationException(type, tag, WEIGHTS, "at least one weight must be > 0");
            }
        }
        int k = ConfigurationUtils.readIntProperty(type, tag, config, RANK_CONSTANT, DEFAULT_RANK_CONSTANT);
        double minRange = readDouble(type, tag, config, MIN_RANGE, FusionSettings.DEFAULT_MIN_RANGE);
        FusionSettings settings;
        try {
            settings = new FusionSettings(technique, weights, k, minRange);
        } catch (IllegalArgumentException e) {
            String key = e.getMessage().contains(RANK_CONSTANT) ? RANK_CONSTANT : MIN_RANGE;
            throw newConfigurationException(type, tag, key, e.getMessage().replaceFirst("^\\[[a-z_]+\\] ", ""));
        }
        String ood = ConfigurationUtils.readStringProperty(type, tag, config, CONCEPTS_OUT_OF_DOMAIN, DROP);
        if (DROP.equals(ood) == false && KEEP.equals(ood) == false) {
            throw newConfigurationException(type, tag, CONCEPTS_OUT_OF_DOMAIN, "must be \"" + DROP + "\" or \"" + KEEP + "\", got [" + ood + "]");
        }
        return new SesaFuseProcessor(tag, description, ignoreFailure, settings, DROP.equals(ood), evidence);
    }
}
