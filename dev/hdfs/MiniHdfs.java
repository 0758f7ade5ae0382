// A real HDFS for tests: Hadoop's MiniDFSCluster (one NameNode + one DataNode in this JVM) with WebHDFS.
// Run as a single-file source program, nothing to compile:
//   java -cp 'dev/.cache/hdfs-jars/*' dev/hdfs/MiniHdfs.java <base dir> <rpc port|0> <http port> [key=value ...]
// Extra key=value arguments override the Hadoop configuration (e.g. dfs.permissions.enabled=true).
// Prints "READY rpc=<port> http=<port>" once the NameNode is out of safe mode and the DataNode is live;
// SIGTERM/SIGINT shut the cluster down cleanly (NameNode, DataNode, their ports) and exit 0.

import java.io.File;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

import sun.misc.Signal;
import sun.misc.SignalHandler;

public class MiniHdfs {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: MiniHdfs <base dir> <rpc port|0> <http port> [key=value ...]");
            System.exit(2);
        }
        File base = new File(args[0]).getAbsoluteFile();
        int rpc = Integer.parseInt(args[1]);
        int http = Integer.parseInt(args[2]);

        Configuration conf = new Configuration();
        conf.set("hadoop.security.authentication", "simple");
        conf.setBoolean("dfs.webhdfs.enabled", true);
        conf.setBoolean("dfs.permissions.enabled", false);
        conf.setInt("dfs.replication", 1);
        conf.setInt("dfs.namenode.safemode.extension", 0);
        conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
        conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
        conf.set("dfs.datanode.hostname", "127.0.0.1");
        conf.setBoolean("dfs.datanode.use.datanode.hostname", true);
        conf.setBoolean("dfs.client.use.datanode.hostname", true);
        for (int i = 3; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("not key=value: " + args[i]);
            conf.set(args[i].substring(0, eq), args[i].substring(eq + 1));
        }

        // Shut down from a SIGTERM/SIGINT handler on an ordinary thread, not from a JVM shutdown hook:
        // inside a hook the DataNode's own shutdown fails ("Shutdown in progress, cannot remove a
        // shutdownHook") and leaves its volumes half closed. The hook below is only a fallback.
        AtomicReference<MiniDFSCluster> running = new AtomicReference<>();
        CountDownLatch down = new CountDownLatch(1);
        SignalHandler stop = sig -> new Thread(() -> {
            System.out.println("STOPPING on SIG" + sig.getName());
            System.out.flush();
            int rc = 0;
            MiniDFSCluster cluster = running.getAndSet(null);
            try {
                if (cluster != null) cluster.shutdown();
            } catch (Throwable t) {
                t.printStackTrace();
                rc = 1;
            }
            System.out.println("STOPPED");
            System.out.flush();
            down.countDown();
            System.exit(rc);
        }, "minihdfs-stop").start();
        for (String name : new String[] {"TERM", "INT", "HUP"}) Signal.handle(new Signal(name), stop);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            MiniDFSCluster cluster = running.getAndSet(null);
            if (cluster != null) {
                try {
                    cluster.shutdown();
                } catch (Throwable ignored) {
                    // best effort only, see above
                }
            }
        }, "minihdfs-shutdown-hook"));

        MiniDFSCluster cluster;
        try {
            cluster = new MiniDFSCluster.Builder(conf, base)
                    .numDataNodes(1)
                    .nameNodePort(rpc)
                    .nameNodeHttpPort(http)
                    .format(true)
                    .build();
            running.set(cluster);
            cluster.waitActive();
            cluster.waitClusterUp();
        } catch (Throwable t) { // e.g. BindException: port taken. Exit even if server threads were started.
            t.printStackTrace();
            System.out.flush();
            Runtime.getRuntime().halt(1);
            return;
        }
        System.out.println("READY rpc=" + cluster.getNameNodePort() + " http="
                + cluster.getNameNode().getHttpAddress().getPort());
        System.out.flush();
        down.await(); // then System.exit() in the stop thread ends the JVM
    }
}
