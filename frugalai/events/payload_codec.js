// frugalai event payload codec, binary format version 1 (see docs/event-format.md).
//
// Paste this file as the device profile's JavaScript codec in ChirpStack v4, or as the uplink
// payload formatter in The Things Stack (v3). Both call decodeUplink(input) with
// input.bytes (array of byte values) and input.fPort, and read {data, warnings, errors};
// a non-empty `errors` marks the uplink as undecodable.
//
// ES5 only (ChirpStack runs QuickJS, The Things Stack runs goja): no typed arrays, no arrow
// functions, no let/const, so the same file works everywhere and under node for the tests.

var FRUGALAI_KINDS = ["heartbeat", "alarm", "clear", "class", "summary", "health"];
// health events: byte 8 is the mask of the failing checks (bit i), the model id bits the code
// of the check that changed (docs/sensors.md says what each means in the field)
var FRUGALAI_CHECKS = ["gap", "stuck", "range", "spike", "noise", "drift", "partner", "link"];
var FRUGALAI_EPOCH_2020 = 1577836800;
var FRUGALAI_SHORT = 11;
var FRUGALAI_SUMMARY = 37;

function frugalaiU16(b, i) { return b[i] * 256 + b[i + 1]; }

function frugalaiU32(b, i) { return ((b[i] * 256 + b[i + 1]) * 256 + b[i + 2]) * 256 + b[i + 3]; }

// IEEE-754 binary16, big-endian.
function frugalaiF16(b, i) {
  var h = frugalaiU16(b, i);
  var sign = h & 0x8000 ? -1 : 1;
  var exp = (h >> 10) & 0x1f;
  var frac = h & 0x3ff;
  if (exp === 0) { return sign * frac * Math.pow(2, -24); }
  if (exp === 31) { return frac ? null : sign * Infinity; }
  return sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
}

// IEEE-754 binary32, big-endian.
function frugalaiF32(b, i) {
  var bits = frugalaiU32(b, i);
  var sign = bits >= 0x80000000 ? -1 : 1;
  var exp = Math.floor(bits / 0x800000) & 0xff;
  var frac = bits % 0x800000;
  if (exp === 0) { return sign * frac * Math.pow(2, -149); }
  if (exp === 255) { return frac ? null : sign * Infinity; }
  return sign * (1 + frac / 0x800000) * Math.pow(2, exp - 127);
}

// Decode one frugalai event; throws an Error with a readable message on bad input.
function frugalaiDecode(bytes) {
  if (!bytes || (bytes.length !== FRUGALAI_SHORT && bytes.length !== FRUGALAI_SUMMARY)) {
    throw new Error("frugalai: expected " + FRUGALAI_SHORT + " or " + FRUGALAI_SUMMARY +
                    " bytes, got " + (bytes ? bytes.length : 0));
  }
  var head = bytes[0];
  var version = head >> 6;
  if (version !== 1) { throw new Error("frugalai: expected version 1, got " + version); }
  var code = (head >> 3) & 7;
  var kind = FRUGALAI_KINDS[code];
  if (kind === undefined) { throw new Error("frugalai: unknown kind code " + code); }
  var ts = frugalaiU32(bytes, 4) + FRUGALAI_EPOCH_2020;
  var out = {
    version: version,
    kind: kind,
    model_id: head & 7,
    sensor_id: bytes[1],
    seq: frugalaiU16(bytes, 2),
    ts: ts,
    time: new Date(ts * 1000).toISOString()
  };
  if (bytes.length === FRUGALAI_SUMMARY) {
    if (kind !== "summary") {
      throw new Error("frugalai: " + FRUGALAI_SUMMARY + " bytes is the summary layout, but the kind is " + kind);
    }
    var nan = function (x) { return x === null || x !== x ? null : x; };
    var word = frugalaiU32(bytes, 8);  // bits 28-31: saturation flags, 0-27: period
    var names = ["windows", "events", "errors", "dropped"];
    var saturated = [];
    for (var i = 0; i < 4; i++) {
      if (Math.floor(word / Math.pow(2, 31 - i)) % 2 === 1) { saturated.push(names[i]); }
    }
    out.stats = {
      period_s: word % Math.pow(2, 28),
      readings: frugalaiU32(bytes, 12),
      windows: frugalaiU16(bytes, 16),
      events: frugalaiU16(bytes, 18),
      errors: frugalaiU16(bytes, 20),
      dropped: frugalaiU16(bytes, 22),
      saturated: saturated,
      max_score: bytes[24] === 255 ? null : bytes[24] / 10,
      min: nan(frugalaiF32(bytes, 25)),
      mean: nan(frugalaiF32(bytes, 29)),
      max: nan(frugalaiF32(bytes, 33))
    };
    return out;
  }
  if (kind === "class") {
    out.label = bytes[8];
  } else if (kind === "health") {
    out.label = bytes[8];
    out.check = FRUGALAI_CHECKS[head & 7];
    out.faults = [];
    for (var i = 0; i < 8; i++) {
      if ((bytes[8] >> i) & 1) { out.faults.push(FRUGALAI_CHECKS[i]); }
    }
  } else {
    out.score = bytes[8] / 10;
  }
  out.value = frugalaiF16(bytes, 9);
  return out;
}

function decodeUplink(input) {
  try {
    return { data: frugalaiDecode(input.bytes), warnings: [], errors: [] };
  } catch (err) {
    return { warnings: [], errors: [err.message] };
  }
}

if (typeof module !== "undefined" && module.exports) {
  module.exports = { decodeUplink: decodeUplink, frugalaiDecode: frugalaiDecode };
}
