// A kafkajs group consumer as its own process (so a test can SIGKILL it). argv: bootstrap (host:port[,host:port...]) group topic.
// Prints one line per event: "JOINED <memberId>", "REC <partition> <offset> <value>". SIGTERM = graceful leave.
import { Kafka, logLevel } from 'kafkajs';

const [bootstrap, groupId, topic] = process.argv.slice(2);
const kafka = new Kafka({ brokers: bootstrap.split(','), clientId: `child-${process.pid}`, logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, rebalanceTimeout: 30000, heartbeatInterval: 1000, maxWaitTimeInMs: 200 });
consumer.on(consumer.events.GROUP_JOIN, (e) => process.stdout.write(`JOINED ${e.payload.memberId}\n`));
consumer.on(consumer.events.CRASH, (e) => process.stdout.write(`CRASH ${e.payload.error?.message}\n`));
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ partition, message }) => {
    process.stdout.write(`REC ${partition} ${message.offset} ${message.value.toString()}\n`);
  },
});
process.on('SIGTERM', () => {
  consumer.disconnect().then(() => process.exit(0), () => process.exit(1));
});
