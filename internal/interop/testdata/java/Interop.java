// Apache Avro Java as the reference implementation for meshpulse's wire
// format. The interop tests compile this file with javac against the jars
// that scripts/install-interop fetched from Maven Central.
//
//   java Interop fingerprint SCHEMA.avsc...
//       prints "<file> <parsingFingerprint64 hex> <parsing canonical form>"
//   java Interop single SCHEMA.avsc DATUMS.json OUTDIR
//       encodes each Avro-JSON datum (one per line) with BinaryMessageEncoder
//       (single-object encoding) into OUTDIR/<n>.bin
//   java Interop confluent SCHEMA.avsc DATUMS.json REGISTRY_URL SUBJECT OUTDIR
//       registers the schema under SUBJECT and writes the Confluent framing
//       (00, 4-byte schema id, Avro binary body) into OUTDIR/<n>.bin
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageEncoder;

public class Interop {
  public static void main(String[] args) throws Exception {
    switch (args[0]) {
      case "fingerprint":
        for (int i = 1; i < args.length; i++) {
          Schema s = new Schema.Parser().parse(new File(args[i]));
          System.out.printf("%s %016x %s%n", args[i], SchemaNormalization.parsingFingerprint64(s), SchemaNormalization.toParsingForm(s));
        }
        break;
      case "single": {
        Schema s = new Schema.Parser().parse(new File(args[1]));
        BinaryMessageEncoder<GenericRecord> enc = new BinaryMessageEncoder<>(GenericData.get(), s);
        int n = 0;
        for (GenericRecord r : read(s, args[2])) {
          ByteBuffer b = enc.encode(r);
          byte[] out = new byte[b.remaining()];
          b.get(out);
          Files.write(Path.of(args[3], (n++) + ".bin"), out);
        }
        break;
      }
      case "confluent": {
        Schema s = new Schema.Parser().parse(new File(args[1]));
        int id = register(args[3], args[4], s.toString());
        int n = 0;
        for (GenericRecord r : read(s, args[2])) {
          ByteArrayOutputStream out = new ByteArrayOutputStream();
          out.write(0);
          out.write(ByteBuffer.allocate(4).putInt(id).array());
          BinaryEncoder be = EncoderFactory.get().binaryEncoder(out, null);
          new GenericDatumWriter<GenericRecord>(s).write(r, be);
          be.flush();
          Files.write(Path.of(args[5], (n++) + ".bin"), out.toByteArray());
        }
        break;
      }
      default:
        throw new IllegalArgumentException("unknown command " + args[0]);
    }
  }

  static List<GenericRecord> read(Schema s, String file) throws Exception {
    GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(s);
    java.util.ArrayList<GenericRecord> out = new java.util.ArrayList<>();
    for (String line : Files.readAllLines(Path.of(file))) {
      if (line.isBlank()) continue;
      out.add(reader.read(null, DecoderFactory.get().jsonDecoder(s, line)));
    }
    return out;
  }

  // register posts the schema as Confluent's serializers do and returns its id.
  static int register(String url, String subject, String schema) throws Exception {
    String body = "{\"schema\":" + quote(schema) + "}";
    HttpRequest req = HttpRequest.newBuilder(URI.create(url + "/subjects/" + subject + "/versions"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .POST(HttpRequest.BodyPublishers.ofString(body)).build();
    HttpResponse<String> resp = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
    if (resp.statusCode() != 200) throw new RuntimeException("register: " + resp.statusCode() + " " + resp.body());
    Matcher m = Pattern.compile("\"id\"\\s*:\\s*(\\d+)").matcher(resp.body());
    if (!m.find()) throw new RuntimeException("register: no id in " + resp.body());
    return Integer.parseInt(m.group(1));
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
}
