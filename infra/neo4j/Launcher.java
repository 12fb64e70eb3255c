// Runs Neo4j Community embedded with its Bolt server on one address, until SIGTERM.
//
//   java -cp '<jars>/*' Launcher.java <home> <host> <port> <pagecache>
//
// The jars come from infra/neo4j/pom.xml. Authentication is off unless NEO4J_PASSWORD is set;
// then it is on and the `neo4j` user's password is set to it at start-up.
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.io.ByteUnit;

public class Launcher {
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 4) {
            System.err.println("usage: Launcher <home> <host> <port> <pagecache, e.g. 256m>");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        String host = args[1];
        int port = Integer.parseInt(args[2]);
        long pageCache = ByteUnit.parse(args[3]);
        String password = System.getenv().getOrDefault("NEO4J_PASSWORD", "");

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
                .setConfig(HttpConnector.enabled, false)
                .setConfig(GraphDatabaseSettings.pagecache_memory, pageCache)
                .setConfig(GraphDatabaseSettings.auth_enabled, !password.isEmpty())
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            stopped.countDown();
        }));
        if (!password.isEmpty()) {
            setPassword(dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME), password);
        }
        System.out.println("neo4j ready: bolt://" + host + ":" + port + " (home " + home + ")");
        stopped.await();
    }

    private static void setPassword(GraphDatabaseService system, String password) {
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                    java.util.Map.of("password", password));
        } catch (RuntimeException e) {
            // Raised when the password is already this one: nothing to change.
            System.out.println("neo4j password unchanged: " + e.getMessage());
        }
    }
}
