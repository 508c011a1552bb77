package ganxun;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.config.Setting;
import org.neo4j.io.ByteUnit;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Local development Neo4j 5 (Community) server for ganxun, started by scripts/neo4j-dev.
 *
 * <p>Embedded {@link DatabaseManagementService} with the Bolt connector on 127.0.0.1, auth on,
 * and the {@code neo4j} user's password forced to {@code NEO4J_PASSWORD} on every start.
 *
 * <p>Environment:
 * <ul>
 *   <li>{@code GANXUN_NEO4J_HOME} - Neo4j home directory (data/ and logs/ live under it); required</li>
 *   <li>{@code NEO4J_BOLT_PORT} - Bolt port (default 7687)</li>
 *   <li>{@code NEO4J_BOLT_HOST} - Bolt listen address (default 127.0.0.1)</li>
 *   <li>{@code NEO4J_PASSWORD} - password of user neo4j (default ganxun-dev-password, at least 8 chars)</li>
 *   <li>{@code GANXUN_NEO4J_PAGECACHE} - page cache size, e.g. 256m, 1g (default 256m)</li>
 * </ul>
 */
public final class Neo4jLauncher {

    private static final String USER = "neo4j";

    private Neo4jLauncher() {}

    private static String env(String name, String def) {
        String v = System.getenv(name);
        return (v == null || v.isBlank()) ? def : v.trim();
    }

    private static long parseBytes(String s) {
        String v = s.trim().toLowerCase();
        long mult = 1;
        char last = v.charAt(v.length() - 1);
        if (last == 'k' || last == 'm' || last == 'g') {
            mult = last == 'k' ? ByteUnit.kibiBytes(1) : last == 'm' ? ByteUnit.mebiBytes(1) : ByteUnit.gibiBytes(1);
            v = v.substring(0, v.length() - 1);
        }
        return Long.parseLong(v) * mult;
    }

    private static void log(String msg) {
        System.out.println("[ganxun-neo4j] " + msg);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String homeStr = env("GANXUN_NEO4J_HOME", null);
        if (homeStr == null) {
            System.err.println("[ganxun-neo4j] GANXUN_NEO4J_HOME is not set");
            System.exit(2);
        }
        Path home = Path.of(homeStr).toAbsolutePath();
        Files.createDirectories(home);
        String host = env("NEO4J_BOLT_HOST", "127.0.0.1");
        int port = Integer.parseInt(env("NEO4J_BOLT_PORT", "7687"));
        String password = env("NEO4J_PASSWORD", "ganxun-dev-password");
        long pageCache = parseBytes(env("GANXUN_NEO4J_PAGECACHE", "256m"));

        Map<Setting<?>, Object> cfg = new HashMap<>();
        cfg.put(GraphDatabaseSettings.auth_enabled, true);
        cfg.put(GraphDatabaseSettings.initial_default_database, "neo4j");
        cfg.put(GraphDatabaseSettings.default_listen_address, new SocketAddress(host));
        cfg.put(GraphDatabaseSettings.pagecache_memory, pageCache);
        cfg.put(GraphDatabaseSettings.udc_enabled, false); // no usage reports from dev/CI boxes
        cfg.put(BoltConnector.enabled, true);
        cfg.put(BoltConnector.listen_address, new SocketAddress(host, port));
        cfg.put(BoltConnector.advertised_address, new SocketAddress(host, port));
        cfg.put(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED);
        cfg.put(HttpConnector.enabled, false);
        cfg.put(HttpsConnector.enabled, false);

        log("starting Neo4j (home " + home + ", bolt " + host + ":" + port + ")");
        long t0 = System.nanoTime();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(cfg)
                .setUserLogProvider(new Log4jLogProvider(System.out, Level.INFO))
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log("shutdown requested, stopping Neo4j");
            try {
                dbms.shutdown();
                log("Neo4j stopped cleanly");
            } catch (Throwable t) {
                System.err.println("[ganxun-neo4j] error during shutdown: " + t);
            } finally {
                stopped.countDown();
            }
        }, "ganxun-neo4j-shutdown"));

        try {
            setPassword(dbms, password);
            // Touch the default database so that it is fully started before we say "ready".
            dbms.database("neo4j").executeTransactionally("RETURN 1");
        } catch (Throwable t) {
            System.err.println("[ganxun-neo4j] start-up failed: " + t);
            t.printStackTrace();
            System.exit(1); // runs the shutdown hook, which closes the databases
        }
        // scripts/neo4j-dev waits for this exact line before it opens a driver session.
        log(String.format("ready on bolt://%s:%d after %.1f s", host, port, (System.nanoTime() - t0) / 1e9));
        stopped.await();
    }

    /** Forces the password of user neo4j via the system database (embedded access bypasses auth). */
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                    "ALTER USER " + USER + " SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            log("password of user '" + USER + "' set from NEO4J_PASSWORD");
        } catch (RuntimeException e) {
            String msg = String.valueOf(e.getMessage());
            if (msg.contains("cannot be the same")) {
                log("password of user '" + USER + "' already matches NEO4J_PASSWORD");
            } else {
                throw e;
            }
        }
    }
}
