/*
 * A real single-node OpenSearch 2.19 server started from a Maven classpath (dev/opensearch/pom.xml),
 * for dev/devstack/opensearch.py. Run as a Java 17 single-file source program, nothing is compiled:
 *
 *   java -cp 'dev/.cache/opensearch-jars/*' dev/opensearch/OpenSearchNode.java HOME HTTP_PORT TRANSPORT_PORT
 *
 * A packaged OpenSearch loads its modules from HOME/modules/<name>/plugin-descriptor.properties; here the
 * module jars are on the classpath, so the node is a subclass of Node that is handed their plugin classes
 * (what the test framework's MockNode does). Security off: there is no security plugin at all.
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public class OpenSearchNode {
    /** The modules a distribution ships that we want, by plugin class; a missing jar is skipped. */
    static final String[] MODULES = {
        "org.opensearch.transport.Netty4Plugin",               // transport-netty4: HTTP + transport
        "org.opensearch.analysis.common.CommonAnalysisPlugin", // analysis-common: analyzers, normalizers
        "org.opensearch.geo.GeoModulePlugin",                  // geo: geohash_grid, geotile_grid, geo_bounds aggs
        "org.opensearch.index.reindex.ReindexPlugin",          // reindex: _reindex, _delete_by_query, _update_by_query
        "org.opensearch.painless.PainlessPlugin",              // lang-painless: scripts
        "org.opensearch.ingest.common.IngestCommonPlugin",     // ingest-common: pipeline processors
        "org.opensearch.script.mustache.MustachePlugin",       // lang-mustache: {{templates}}, search templates
        "org.opensearch.index.mapper.MapperExtrasPlugin",      // mapper-extras: scaled_float, token_count, ...
    };

    static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: OpenSearchNode HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        for (String dir : List.of("config", "data", "logs", "plugins", "modules")) {
            Files.createDirectories(home.resolve(dir));
        }
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "logtap-dev")
            .put("node.name", "logtap-dev-0")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", args[1])
            .put("transport.port", args[2])
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("action.auto_create_index", true)
            // a dev node on a shared disk: no read-only indices when the disk is nearly full
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("logtap-dev-0");

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String name : MODULES) {
            try {
                plugins.add(Class.forName(name).asSubclass(Plugin.class));
            } catch (ClassNotFoundException e) {
                System.err.println("module not on the classpath, skipped: " + name);
            }
        }
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), home.resolve("config"),
            () -> "logtap-dev-0");
        Node node = new ClasspathNode(env, plugins);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
            stopped.countDown();
        }, "opensearch-shutdown"));
        node.start();
        System.out.println("OpenSearchNode started: http 127.0.0.1:" + args[1] + " transport 127.0.0.1:" + args[2]);
        stopped.await(); // the node's threads are daemons: keep the JVM alive until SIGTERM
    }
}
