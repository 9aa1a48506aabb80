package org.sesa.opensearch.util;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SesaConventionsTests {

    @Test
    void readsBundledSchema() {
        SesaConventions c = SesaConventions.get();
        assertEquals("opensearch-sesa", c.pluginName());
        assertEquals("sesa", c.indexMetaKey());
        assertEquals("127.0.0.1:50051", c.defaultInferenceEndpoint());
        assertEquals("_dense", c.fieldSuffix("dense"));
        assertEquals("missing_source", c.statusValue("missing_source"));
        assertThrows(IllegalStateException.class, () -> c.fieldSuffix("nope"));
        assertEquals("sesa_concept_labels", SesaFieldNames.forPrefix("sesa").conceptLabels());
        assertEquals("0.1.0", PluginInfo.version());
    }
}
