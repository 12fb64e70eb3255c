// Runs a single-node OpenSearch with its HTTP API on one address, until SIGTERM.
//
//   java -cp '<jars>/*' Launcher.java <home> <host> <http port> <transport port>
//
// The jars come from infra/opensearch/pom.xml. The node is built from its plugins directly
// (Netty transport, common analysis, Painless), which skips the distribution's bootstrap:
// no security manager, jar-hell or production bootstrap checks, and it may run as root.
// Data and logs live under <home>; <home>/config/log4j2.properties sets the logging (the
// caller puts it there). Disk watermarks are off because a developer's disk is shared.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public class Launcher {
    static final String NODE_NAME = "tillflow-local";

    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Launcher <home> <host> <http port> <transport port>");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Path config = home.resolve("config");
        Files.createDirectories(config);
        Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", "tillflow")
                .put("node.name", NODE_NAME)
                .put("network.host", args[1])
                .put("http.port", args[2])
                .put("transport.port", args[3])
                .put("discovery.type", "single-node")
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(
                settings, Map.of(), config, () -> NODE_NAME);
        LogConfigurator.setNodeName(NODE_NAME);
        LogConfigurator.configure(env);

        Node node = new EmbeddedNode(
                env, List.of(Netty4Plugin.class, CommonAnalysisPlugin.class, PainlessPlugin.class));
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                System.err.println("opensearch close failed: " + e);
            }
            stopped.countDown();
        }));
        node.start();
        System.out.println("opensearch ready: http://" + args[1] + ":" + args[2] + " (home " + home + ")");
        stopped.await();
    }
}
