// `fashionnet search` and `embed --images`: the HTML page writer on hand-made results (hit/miss marking,
// relative links, distances, escaping), the preprocessing of one plain photo, refusals of bad inputs, an
// end-to-end run (synthetic data, a tiny model trained for a few steps, a gallery, a search), embed -> search
// from another working directory (the recorded dataset root, the warning on missing gallery images), and, where
// Debian's `chromium` is installed, a headless render of a page to a PNG and a check that its images load.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/npy.h"
#include "data/image_io.h"
#include "data/synth.h"
#include "data/transform.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/eval/inference.h"
#include "fashionnet/eval/photo_search.h"
#include "fashionnet/eval/query_image.h"
#include "fashionnet/report/search_page.h"
#include "fashionnet/train/trainer.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace fn::fashionnet;

namespace {

struct TempDir : fn::test::TempDir {
  explicit TempDir(const std::string& tag) : fn::test::TempDir("search_page_" + tag) {}
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// A w x h photo: left half `a`, right half `b`.
fn::data::Image two_tone(int w, int h, const uint8_t a[3], const uint8_t b[3]) {
  fn::data::Image img;
  img.w = w;
  img.h = h;
  img.rgb.resize(size_t(w) * size_t(h) * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.rgb[(size_t(y) * w + x) * 3 + c] = (x < w / 2 ? a : b)[c];
  return img;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A hand-made page: query 0 of item A (results: A hit, B miss), query 1 of unknown item.
std::vector<PageQuery> hand_made(const std::string& root) {
  PageQuery q0;
  q0.image = root + "/queries/shirt <1>.jpg";
  q0.item_id = "id_A";
  q0.width = 200;
  q0.height = 300;
  q0.landmarks.assign(16, 0.5f);
  q0.landmarks[0] = 0.25f;  // slot 0 at x = 0.25 of the width: 64 px of a 256 px display
  q0.landmarks[1] = 0.1f;   // y = 0.1 of 384 px
  q0.visible = {true, false, false, false, false, false, false, true};
  q0.results = {{root + "/gallery/img/a1.jpg", "id_A", 0.125f}, {root + "/gallery/img/b1.jpg", "id_B", 0.5f}};
  PageQuery q1 = q0;
  q1.image = root + "/queries/unknown.png";
  q1.item_id = "-";
  return {q0, q1};
}

// Runs in another working directory for its lifetime, as a user running a command from elsewhere.
struct InDirectory {
  fs::path previous = fs::current_path();
  explicit InDirectory(const fs::path& dir) {
    fs::create_directories(dir);
    fs::current_path(dir);
  }
  ~InDirectory() { fs::current_path(previous); }
};

// `fashionnet embed --data runs/demo/data --split gallery --out out/gal` run in `project`, with an untrained
// tiny model (where the images are does not depend on the weights).
struct EmbeddedGallery {
  fs::path project, data, checkpoint, prefix;
  Embeddings gallery;
  std::string query_photo;  // absolute
};

EmbeddedGallery embed_gallery_in(const fs::path& project) {
  EmbeddedGallery g;
  g.project = project;
  g.data = project / "runs/demo/data";
  fn::data::SynthConfig sc;
  sc.out = g.data.string();
  sc.items = 6;
  sc.size = 64;
  sc.seed = 5;
  fn::data::synthesize(sc);
  TrainConfig cfg = preset("tiny");
  FashionNet model(cfg.net);
  g.checkpoint = project / "tiny.safetensors";
  save_checkpoint(g.checkpoint.string(), model, nullptr, cfg, TrainState{});
  g.prefix = project / "out/gal";
  InDirectory in(project);
  fs::create_directories("out");
  fn::data::Dataset ds = fn::data::load_dataset("runs/demo/data", "inshop");  // relative, as typed
  InferenceOptions io;
  io.progress = false;
  g.gallery = embed_split(model, ds, "gallery", fn::Device::CPU, io);
  write_embeddings("out/gal", g.gallery);
  g.query_photo = (g.data / ds.samples[size_t(ds.indices(fn::data::Split::Query).at(0))].image).string();
  return g;
}

// Loads `page` in headless chromium with a script added that, once every image has loaded or failed, counts
// the <img> elements that decoded (naturalWidth > 0). Returns "loaded=N broken=M first=SRC" (SRC: the first
// broken link), or the chromium log when no count came back.
std::string images_loaded_in_chromium(const std::string& page, const fs::path& scratch) {
  std::string html = read_text(page);
  const size_t body = html.rfind("</body>");
  REQUIRE(body != std::string::npos);
  html.insert(body, R"(<script>
window.addEventListener('load', function () {
  var ok = 0, bad = 0, first = '';
  for (var i = 0; i < document.images.length; ++i) {
    var im = document.images[i];
    if (im.complete && im.naturalWidth > 0) ++ok; else { ++bad; if (!first) first = im.getAttribute('src'); }
  }
  var p = document.createElement('pre');
  p.textContent = 'IMG' + 'CHECK loaded=' + ok + ' broken=' + bad + ' first=' + first + ' END';
  document.body.appendChild(p);
});
</script>
)");
  // (The marker is split in the script, so that the script's own text in the DOM never reads as a count.)
  // Next to the page, so that its relative links resolve exactly as the page's own.
  const std::string check = (fs::path(page).parent_path() / "imgcheck.html").string();
  std::ofstream(check) << html;
  const std::string dom = (scratch / "dom.txt").string(), log = (scratch / "chromium.log").string();
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir=" +
                          (scratch / "profile").string() + " --virtual-time-budget=10000 --dump-dom file://" +
                          fs::absolute(check).string() + " >" + dom + " 2>" + log;
  const int rc = std::system(cmd.c_str());
  const std::string out = read_text(dom);
  const size_t b = out.find("IMGCHECK "), e = out.find(" END", b);
  if (rc != 0 || b == std::string::npos || e == std::string::npos)
    return "no count (rc " + std::to_string(rc) + "): " + read_text(log);
  return out.substr(b + 9, e - b - 9);
}

}  // namespace

TEST_CASE("search page: hits and misses, relative links, distances, escaping", "[search_page]") {
  const std::string root = "/data/run";
  std::vector<PageQuery> qs = hand_made(root);
  const std::string html = render_search_page(qs, root + "/pages");
  // Query 0 knows its item: one hit and one miss; query 1 does not: no marking at all.
  CHECK(count(html, "class=\"result hit\"") == 1);
  CHECK(count(html, "class=\"result miss\"") == 1);
  CHECK(count(html, "class=\"result\"") == 2);
  CHECK(count(html, "&#10003; hit") == 1);
  CHECK(html.find("first hit at rank 1") != std::string::npos);
  CHECK(html.find("item: unknown") != std::string::npos);
  // Links relative to the page's folder, percent-encoded; names HTML-escaped.
  CHECK(html.find("src=\"../gallery/img/a1.jpg\"") != std::string::npos);
  CHECK(html.find("src=\"../queries/shirt%20%3C1%3E.jpg\"") != std::string::npos);
  CHECK(html.find("shirt &lt;1&gt;.jpg") != std::string::npos);
  CHECK(html.find("shirt <1>") == std::string::npos);
  // Distances with 4 decimals.
  CHECK(html.find("d=0.1250") != std::string::npos);
  CHECK(html.find("d=0.5000") != std::string::npos);
  // Landmarks: visible slots only (2 per query), at fraction x display size.
  CHECK(count(html, "<circle") == 4);
  CHECK(html.find("cx=\"64.0\" cy=\"38.4\"") != std::string::npos);
  CHECK(html.find("<title>L collar</title>") != std::string::npos);
  CHECK(html.find("<title>R collar</title>") == std::string::npos);  // slot 1 is not visible
  CHECK(html.find("Dots: predicted landmarks") != std::string::npos);
  // A model trained without landmarks: no dots, though the queries carry predictions, and the page says why.
  PageOptions no_dots;
  no_dots.landmarks = false;
  const std::string plain = render_search_page(qs, root + "/pages", no_dots);
  CHECK(count(plain, "<circle") == 0);
  CHECK(plain.find("trained without landmarks") != std::string::npos);
  CHECK(plain.find("Dots: predicted landmarks") == std::string::npos);
  // A query with a box: its crop drawn as a dashed frame at fraction x display size (256 x 384), and a word on
  // the frame under the title; none without.
  CHECK(count(html, "class=\"crop\"") == 0);
  CHECK(html.find("Dashed frame") == std::string::npos);
  qs[1].crop = {0.25f, 0.5f, 0.75f, 1.f};
  const std::string boxed = render_search_page(qs, root + "/pages");
  CHECK(count(boxed, "class=\"crop\"") == 1);
  CHECK(boxed.find("x=\"64.0\" y=\"192.0\" width=\"128.0\" height=\"192.0\"") != std::string::npos);
  CHECK(boxed.find("Dashed frame") != std::string::npos);

  CHECK(html_escape("a&b<c>\"d'") == "a&amp;b&lt;c&gt;&quot;d&#39;");
  CHECK(relative_link("/x/y/z.png", "/x/w") == "../y/z.png");
  CHECK(relative_link("/x/y/z.png", "/x/y") == "z.png");
  CHECK(!item_known("") );
  CHECK(!item_known("-"));
  CHECK(item_known("id_1"));

  TempDir t("writer");
  REQUIRE_NOTHROW(write_search_page(t / "page.html", qs));
  CHECK(read_text(t / "page.html").find("<!DOCTYPE html>") == 0);
  const std::string err = error_of([&] { write_search_page(t / "no_such_dir/page.html", qs); });
  CHECK(err.find("no_such_dir/page.html") != std::string::npos);
}

TEST_CASE("query image: whole photo, resized and normalised", "[search_page]") {
  TempDir t("query");
  const uint8_t red[3] = {255, 0, 128}, blue[3] = {0, 64, 255};
  fn::data::write_image(t / "photo.png", two_tone(40, 24, red, blue));
  QueryImage q = load_query_image(t / "photo.png", 16);
  REQUIRE(q.input.shape() == fn::Shape{1, 3, 16, 16});
  CHECK(q.width == 40);
  CHECK(q.height == 24);
  const float* p = q.input.f32();
  // Far from the seam the bilinear resize returns the source colour exactly: (v/255 - mean) / std.
  for (int c = 0; c < 3; ++c) {
    const float left = (red[c] / 255.f - fn::data::kMean[c]) / fn::data::kStd[c];
    const float right = (blue[c] / 255.f - fn::data::kMean[c]) / fn::data::kStd[c];
    for (int y = 0; y < 16; ++y) {
      CHECK(std::fabs(p[(c * 16 + y) * 16 + 0] - left) < 1e-5f);
      CHECK(std::fabs(p[(c * 16 + y) * 16 + 15] - right) < 1e-5f);
    }
  }
  // The seam at source x = 20 of 40 sits at input x = 8 of 16: the whole width is the crop.
  CHECK(std::fabs(p[4 * 16 + 6] - (255 / 255.f - fn::data::kMean[0]) / fn::data::kStd[0]) < 1e-5f);
  CHECK(std::fabs(p[4 * 16 + 9] - (0 / 255.f - fn::data::kMean[0]) / fn::data::kStd[0]) < 1e-5f);

  // Missing and corrupt files are refused naming the file.
  CHECK(error_of([&] { load_query_image(t / "missing.jpg", 16); }).find("missing.jpg") != std::string::npos);
  std::ofstream(t / "corrupt.jpg") << "not a jpeg at all";
  CHECK(error_of([&] { load_query_image(t / "corrupt.jpg", 16); }).find("corrupt.jpg") != std::string::npos);
}

TEST_CASE("query boxes: the box file, --box, the crop and the way back to the photo", "[search_page]") {
  TempDir t("boxes");
  std::ofstream(t / "boxes.txt") << "# image_path x1 y1 x2 y2\n\n./x/a.jpg 10 20 30 60\r\nother.jpg 0 0 5 5\n";
  const auto boxes = photo_boxes_from_file(t / "boxes.txt", {"x/a.jpg", "b.jpg"});
  REQUIRE(boxes.size() == 2);
  REQUIRE(boxes[0].has_value());
  CHECK((boxes[0]->x1 == 10 && boxes[0]->y1 == 20 && boxes[0]->x2 == 30 && boxes[0]->y2 == 60));
  CHECK(!boxes[1].has_value());  // not listed: the whole photo
  // Malformed lines name the file and the line; a file listing none of the photos is refused.
  std::ofstream(t / "short.txt") << "a.jpg 1 2 3\n";
  const std::string short_err = error_of([&] { photo_boxes_from_file(t / "short.txt", {"a.jpg"}); });
  CHECK(short_err.find("short.txt: line 1") != std::string::npos);
  CHECK(short_err.find("four whole numbers") != std::string::npos);
  std::ofstream(t / "empty_box.txt") << "# header\na.jpg 5 2 5 9\n";
  CHECK(error_of([&] { photo_boxes_from_file(t / "empty_box.txt", {"a.jpg"}); }).find("empty_box.txt: line 2") !=
        std::string::npos);
  std::ofstream(t / "twice.txt") << "a.jpg 1 2 3 4\n./a.jpg 1 2 3 5\n";
  CHECK(error_of([&] { photo_boxes_from_file(t / "twice.txt", {"a.jpg"}); }).find("earlier line") != std::string::npos);
  CHECK(error_of([&] { photo_boxes_from_file(t / "boxes.txt", {"c.jpg"}); }).find("none of the 1 photos") !=
        std::string::npos);
  CHECK(error_of([&] { photo_boxes_from_file(t / "absent.txt", {"a.jpg"}); }).find("absent.txt") != std::string::npos);

  const PhotoBox b = parse_box("40,60,220,380");
  CHECK((b.x1 == 40 && b.y1 == 60 && b.x2 == 220 && b.y2 == 380));
  CHECK(error_of([&] { parse_box("40,60,220"); }).find("--box \"40,60,220\"") != std::string::npos);
  CHECK(!error_of([&] { parse_box("40,60,20,380"); }).empty());

  // The crop: the whole photo without a box; with one, the training loader's rule (data::crop_rect).
  const fn::data::CropRect whole = photo_crop("p.jpg", 200, 300, std::nullopt, 0.2f);
  CHECK((whole.x0 == 0 && whole.y0 == 0 && whole.w == 200 && whole.h == 300));
  fn::data::Sample s;
  s.has_bbox = true;
  s.x1 = 40, s.y1 = 60, s.x2 = 140, s.y2 = 260;
  const fn::data::CropRect want = fn::data::crop_rect(s, 200, 300, 0.25f);
  const fn::data::CropRect got = photo_crop("p.jpg", 200, 300, PhotoBox{40, 60, 140, 260}, 0.25f);
  CHECK((got.x0 == want.x0 && got.y0 == want.y0 && got.w == want.w && got.h == want.h));
  CHECK((got.x0 == 15 && got.y0 == 10 && got.w == 150 && got.h == 290));  // 25 px and 50 px wider, clipped below
  const std::string outside = error_of([&] { photo_crop("p.jpg", 200, 300, PhotoBox{40, 60, 201, 260}, 0.f); });
  CHECK(outside.find("p.jpg") != std::string::npos);
  CHECK(outside.find("200x300") != std::string::npos);

  // Back to the photo: the inverse of the loader's data::InputMap, for any crop; the whole photo's is the
  // former rule, loc + 0.5 / input.
  CHECK(input_to_photo_fraction(0.25f, 16, 0, 200, 200) == Approx(0.25 + 0.5 / 16));
  const fn::data::InputMap m = fn::data::input_map(got, 32, false);
  for (float loc : {0.f, 0.3f, 0.97f}) {
    const float fx = input_to_photo_fraction(loc, 32, got.x0, got.w, 200);
    const float fy = input_to_photo_fraction(loc, 32, got.y0, got.h, 300);
    float ox = 0, oy = 0;
    m.map(fx * 200 - 0.5f, fy * 300 - 0.5f, ox, oy);  // the fraction's pixel centre, through the loader's map
    CHECK(ox == Approx(loc * 32).margin(1e-4));
    CHECK(oy == Approx(loc * 32).margin(1e-4));
  }
}

TEST_CASE("search: image lists, query ids, default gallery root", "[search_page]") {
  TempDir t("args");
  std::ofstream(t / "list.txt") << "# photos\n a.jpg \n\nsub/b.png\r\n";
  auto paths = expand_image_args({t / "list.txt", "c.jpg"});
  CHECK(paths == std::vector<std::string>{"a.jpg", "sub/b.png", "c.jpg"});
  std::ofstream(t / "empty.txt") << "\n# nothing\n";
  CHECK(error_of([&] { expand_image_args({t / "empty.txt"}); }).find("empty.txt") != std::string::npos);
  CHECK(error_of([&] { expand_image_args({t / "nolist.txt"}); }).find("nolist.txt") != std::string::npos);
  // An empty list is refused after a list that names photos too.
  CHECK(error_of([&] { expand_image_args({t / "list.txt", t / "empty.txt"}); }).find("empty.txt") != std::string::npos);

  // A folder: every .jpg, .jpeg and .png in it and below it (any case), in path order; nothing else.
  fs::create_directories(t.path / "photos/b_sub/deeper");
  for (const char* f : {"photos/z.jpg", "photos/a.PNG", "photos/b_sub/c.jpeg", "photos/b_sub/deeper/d.jpg",
                        "photos/notes.txt", "photos/b_sub/e.gif"})
    std::ofstream(t / f) << "x";
  const std::string photos = t / "photos";
  CHECK(expand_image_args({photos, "c.jpg"}) ==
        std::vector<std::string>{photos + "/a.PNG", photos + "/b_sub/c.jpeg", photos + "/b_sub/deeper/d.jpg",
                                 photos + "/z.jpg", "c.jpg"});
  fs::create_directories(t.path / "no_photos");
  std::ofstream(t / "no_photos/readme.txt") << "x";
  const std::string none = error_of([&] { expand_image_args({t / "no_photos"}); });
  CHECK(none.find("no_photos: no .jpg, .jpeg or .png photo") != std::string::npos);

  std::ofstream(t / "q.ids.txt") << "./x/a.jpg id_1\nb.jpg -\n";
  auto ids = query_ids_from_file(t / "q.ids.txt", {"x/a.jpg", "b.jpg", "c.jpg"});
  CHECK(ids == std::vector<std::string>{"id_1", "", ""});

  // The ids file's folder is the root when the first path exists from there (and not from the cwd).
  fs::create_directories(t.path / "img");
  std::ofstream(t / "img/g_unique_name.jpg") << "x";
  Embeddings g;
  g.image_paths = {"img/g_unique_name.jpg"};
  std::string warning;
  CHECK(default_gallery_root(g, t / "gal.ids.txt", &warning) == t.path.string());
  CHECK(warning.empty());
  g.image_paths = {"img/absent.jpg"};
  CHECK(default_gallery_root(g, t / "gal.ids.txt", &warning).empty());
  CHECK(warning.find("--gallery-root") != std::string::npos);
}

TEST_CASE("search: end to end on a tiny model, and bad inputs refused", "[search_page][slow]") {
  TempDir t("e2e");
  fn::data::SynthConfig sc;
  sc.out = t / "data";
  sc.items = 12;
  sc.size = 64;
  sc.seed = 3;
  fn::data::synthesize(sc);

  TrainConfig cfg = preset("tiny");
  REQUIRE(cfg.stages.size() == 2);
  cfg.stages[0].steps = 3;
  cfg.stages[1].steps = 3;
  TrainOptions to;
  to.data_root = sc.out;
  to.out_dir = t / "run";
  to.quiet = true;
  TrainSummary ts = train(cfg, to);
  REQUIRE(fs::exists(ts.final_checkpoint));

  // The gallery, as `fashionnet embed --split gallery` writes it.
  auto model = model_from_checkpoint(ts.final_checkpoint, fn::Device::CPU);
  fn::data::Dataset ds = fn::data::load_dataset(sc.out, "inshop");
  InferenceOptions io;
  io.progress = false;
  Predictions gp = run_inference(*model, ds, ds.indices(fn::data::Split::Gallery), fn::Device::CPU, io);
  const std::string prefix = t / "gallery";
  write_embeddings(prefix, gp.embeddings);
  std::set<std::string> gallery_items(gp.embeddings.item_ids.begin(), gp.embeddings.item_ids.end());

  // Two query photos: a query-split image whose item is in the gallery (item known), and one unknown.
  std::vector<int> qidx = ds.indices(fn::data::Split::Query);
  REQUIRE(qidx.size() >= 2);
  const fn::data::Sample& s0 = ds.samples[size_t(qidx[0])];
  const fn::data::Sample& s1 = ds.samples[size_t(qidx[1])];
  REQUIRE(gallery_items.count(s0.item_id) == 1);

  // embed --images: plain photos, item ids "-", batch size does not change the result.
  const std::vector<std::string> photos = {(fs::path(sc.out) / s0.image).string(), (fs::path(sc.out) / s1.image).string()};
  PhotoOptions po;
  po.batch = 1;
  PhotoEmbeddings one = embed_photos(*model, photos, fn::Device::CPU, po);
  po.batch = 2;
  PhotoEmbeddings two = embed_photos(*model, photos, fn::Device::CPU, po);
  CHECK(one.embeddings.item_ids == std::vector<std::string>{"-", "-"});
  REQUIRE(one.embeddings.features.shape() == fn::Shape{2, int64_t(model->config().fc7_fusion)});
  FN_REQUIRE_CLOSE(two.embeddings.features, one.embeddings.features, 1e-5, 1e-4);
  CHECK(one.landmarks.size() == 2 * 16);
  write_embeddings(t / "photos", one.embeddings);  // accepted by the ids format

  // skip_bad: unreadable photos are left out, each named with its reason; the others' rows are unchanged,
  // whichever batch the bad ones fall in (a batch wholly bad included).
  std::ofstream(t / "bad.jpg") << "not an image";
  const std::vector<std::string> with_bad = {t / "bad.jpg", photos[0], t / "bad.jpg", t / "bad.jpg", photos[1],
                                             t / "missing.png"};
  CHECK(error_of([&] { embed_photos(*model, with_bad, fn::Device::CPU, po); }).find("bad.jpg") != std::string::npos);
  for (int batch : {1, 2}) {
    PhotoOptions skip;
    skip.batch = batch;
    skip.skip_bad = true;
    const PhotoEmbeddings sk = embed_photos(*model, with_bad, fn::Device::CPU, skip);
    CHECK(sk.embeddings.image_paths == photos);
    CHECK(sk.embeddings.item_ids == std::vector<std::string>{"-", "-"});
    FN_REQUIRE_CLOSE(sk.embeddings.features, one.embeddings.features, 1e-5, 1e-4);
    CHECK(sk.width == one.width);
    REQUIRE(sk.skipped.size() == 4);
    CHECK(sk.skipped[0].find("bad.jpg: not a JPEG or PNG file") != std::string::npos);
    CHECK(sk.skipped[3].find("missing.png: cannot open image") != std::string::npos);
  }

  // Photos with the dataset's own boxes and a training margin are the images evaluation sees: embed_photos
  // gives run_inference's embeddings and landmarks (mapped back to the photo) at the same bbox_margin.
  REQUIRE((s0.has_bbox && s1.has_bbox));
  PhotoOptions boxed;
  boxed.batch = 2;
  boxed.bbox_margin = 0.25f;
  for (const fn::data::Sample* s : {&s0, &s1}) boxed.boxes.push_back(PhotoBox{s->x1, s->y1, s->x2, s->y2});
  const PhotoEmbeddings pb = embed_photos(*model, photos, fn::Device::CPU, boxed);
  InferenceOptions margin_io = io;
  margin_io.bbox_margin = 0.25f;
  margin_io.batch = 2;
  const Predictions ip = run_inference(*model, ds, {qidx[0], qidx[1]}, fn::Device::CPU, margin_io);
  FN_REQUIRE_CLOSE(pb.embeddings.features, ip.embeddings.features, 1e-6, 1e-5);
  const int input = model->config().input;
  for (size_t i = 0; i < 2; ++i) {
    const fn::data::CropRect& c = pb.crops[i];
    const fn::data::Sample& s = i == 0 ? s0 : s1;
    const fn::data::CropRect want = fn::data::crop_rect(s, pb.width[i], pb.height[i], 0.25f);
    CHECK((c.x0 == want.x0 && c.y0 == want.y0 && c.w == want.w && c.h == want.h));
    const fn::data::InputMap m = fn::data::input_map(c, input, false);
    for (int k = 0; k < fn::data::kSlots; ++k) {
      float ox = 0, oy = 0;
      m.map(pb.landmarks[(i * 8 + size_t(k)) * 2] * float(pb.width[i]) - 0.5f,
            pb.landmarks[(i * 8 + size_t(k)) * 2 + 1] * float(pb.height[i]) - 0.5f, ox, oy);
      CHECK(ox / float(input) == Approx(ip.landmark_pred[(i * 8 + size_t(k)) * 2]).margin(1e-4));
      CHECK(oy / float(input) == Approx(ip.landmark_pred[(i * 8 + size_t(k)) * 2 + 1]).margin(1e-4));
    }
  }
  // search --data: the dataset's own box and item for photos that are its images, however the path is written;
  // nothing for a photo that is not; a dataset holding none of the photos is refused, naming its root.
  const std::string outsider = t / "outsider.png";
  const uint8_t grey[3] = {90, 90, 90};
  fn::data::write_image(outsider, two_tone(20, 20, grey, grey));
  const std::string dotted = (fs::path(sc.out) / "." / s1.image).string();
  const DatasetQueries dq = dataset_queries(ds, {photos[0], dotted, outsider});
  CHECK(dq.matched == 2);
  CHECK(dq.item_ids == std::vector<std::string>{s0.item_id, s1.item_id, ""});
  REQUIRE(dq.boxes.size() == 3);
  REQUIRE((dq.boxes[0] && dq.boxes[1]));
  CHECK((dq.boxes[0]->x1 == s0.x1 && dq.boxes[0]->y1 == s0.y1 && dq.boxes[0]->x2 == s0.x2 && dq.boxes[0]->y2 == s0.y2));
  CHECK((dq.boxes[1]->x1 == s1.x1 && dq.boxes[1]->y2 == s1.y2));
  CHECK(!dq.boxes[2]);
  const std::string none = error_of([&] { dataset_queries(ds, {outsider}); });
  CHECK(none.find(ds.root) != std::string::npos);
  CHECK(none.find("none of the 1 query photos") != std::string::npos);

  // The margin matters (a test that could fail): without it evaluation would see other pixels.
  InferenceOptions tight_io = margin_io;
  tight_io.bbox_margin = 0.f;
  const Predictions tight = run_inference(*model, ds, {qidx[0], qidx[1]}, fn::Device::CPU, tight_io);
  CHECK(!fn::test::compare(tight.embeddings.features, ip.embeddings.features, 1e-4, 0).ok);
  CHECK(read_embeddings(t / "photos").rows() == 2);

  fs::create_directories(t.path / "page");
  SearchRequest req;
  req.checkpoint = ts.final_checkpoint;
  req.gallery = prefix;
  req.gallery_root = sc.out;
  req.images = photos;
  req.query_item_ids = {s0.item_id, ""};
  req.k = 1000;  // the whole gallery, so the query's own item is surely among the results
  req.html = t / "page/search.html";
  SearchRequest boxed_req = req;  // before the plain search below overwrites the page
  SearchOutcome out = search_photos(req);
  REQUIRE(out.queries.size() == 2);
  REQUIRE(int64_t(out.queries[0].results.size()) == gp.embeddings.rows());
  for (size_t r = 1; r < out.queries[0].results.size(); ++r)
    CHECK(out.queries[0].results[r - 1].distance <= out.queries[0].results[r].distance);

  const std::string html = read_text(req.html);
  const std::string first = out.gallery_paths_as_listed[0][0];
  CHECK(html.find("src=\"../data/" + first + "\"") != std::string::npos);  // relative to page/
  CHECK(html.find(s0.item_id) != std::string::npos);
  CHECK(count(html, "class=\"result hit\"") >= 1);       // query 0's item is in the gallery
  CHECK(count(html, "class=\"result\"") == size_t(gp.embeddings.rows()));  // query 1: unmarked
  CHECK(html.find("src=\"../data/" + s1.image + "\"") != std::string::npos);
  CHECK(count(html, "class=\"crop\"") == 0);

  // A box for the first query only: its crop is the box as training widened it (the checkpoint's
  // bbox_margin, 0 in the tiny preset), drawn on the page; the second query stays whole.
  boxed_req.boxes = {PhotoBox{s0.x1, s0.y1, s0.x2, s0.y2}, std::nullopt};
  boxed_req.html = t / "page/boxed.html";
  const SearchOutcome bo = search_photos(boxed_req);
  REQUIRE(bo.queries.at(0).crop.size() == 4);
  CHECK(bo.queries[0].crop[0] == Approx(double(s0.x1) / bo.queries[0].width));
  CHECK(bo.queries[0].crop[3] == Approx(double(s0.y2) / bo.queries[0].height));
  CHECK(bo.queries.at(1).crop.empty());
  CHECK(count(read_text(boxed_req.html), "class=\"crop\"") == 1);

  // Bad inputs are refused naming the file.
  SearchRequest bad = req;
  bad.images = {t / "nope.jpg"};
  bad.query_item_ids.clear();
  CHECK(error_of([&] { search_photos(bad); }).find("nope.jpg") != std::string::npos);
  std::ofstream(t / "corrupt.png") << "garbage";
  bad.images = {t / "corrupt.png"};
  CHECK(error_of([&] { search_photos(bad); }).find("corrupt.png") != std::string::npos);
  bad.images = photos;
  Embeddings wrong = gp.embeddings;
  wrong.features = fn::Tensor::from(std::vector<float>(size_t(wrong.rows()) * 5, 1.f), {wrong.rows(), 5});
  write_embeddings(t / "wrongdim", wrong);
  bad.gallery = t / "wrongdim";
  const std::string dim_err = error_of([&] { search_photos(bad); });
  CHECK(dim_err.find("wrongdim.npy") != std::string::npos);
  CHECK(dim_err.find("dimension 5") != std::string::npos);
  fs::remove(t / "wrongdim.ids.txt");
  CHECK(error_of([&] { search_photos(bad); }).find("wrongdim.ids.txt") != std::string::npos);
}

TEST_CASE("search page: headless chromium renders it", "[search_page][chromium]") {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    std::printf("SKIPPED: chromium not installed\n");
    return;
  }
  TempDir t("chromium");
  const uint8_t a[3] = {200, 30, 30}, b[3] = {30, 30, 200};
  for (const char* d : {"queries", "gallery/img", "pages"}) fs::create_directories(t.path / d);
  fn::data::write_image(t / "queries/shirt <1>.jpg", two_tone(200, 300, a, b));
  fn::data::write_image(t / "queries/unknown.png", two_tone(200, 300, b, a));
  fn::data::write_image(t / "gallery/img/a1.jpg", two_tone(120, 160, a, a));
  fn::data::write_image(t / "gallery/img/b1.jpg", two_tone(120, 160, b, b));
  const std::string page = t / "pages/search.html", png = t / "shot.png";
  write_search_page(page, hand_made(t.path.string()));
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir=" +
                          (t / "profile") + " --screenshot=" + png + " --window-size=1200,800 file://" + page +
                          " >" + (t / "chromium.log") + " 2>&1";
  INFO(cmd << "\n" << read_text(t / "chromium.log"));
  CHECK(std::system(cmd.c_str()) == 0);
  REQUIRE(fs::exists(png));
  CHECK(fs::file_size(png) > 4096);
  fn::data::Image shot = fn::data::decode_image(png);
  CHECK(shot.w == 1200);
  std::set<uint32_t> colours;
  for (size_t i = 0; i + 2 < shot.rgb.size() && colours.size() < 16; i += 3)
    colours.insert(uint32_t(shot.rgb[i]) << 16 | uint32_t(shot.rgb[i + 1]) << 8 | shot.rgb[i + 2]);
  CHECK(colours.size() >= 16);  // photos, text and landmark dots, not a blank page
  // The query photo's red half is on screen (its <img> link resolved from the page's folder).
  bool red = false;
  for (size_t i = 0; i + 2 < shot.rgb.size() && !red; i += 3)
    red = shot.rgb[i] > 180 && shot.rgb[i + 1] < 60 && shot.rgb[i + 2] < 60;
  CHECK(red);
}

TEST_CASE("search: embed records the dataset root, so search finds the gallery from another folder",
          "[search_page]") {
  TempDir t("root");
  const EmbeddedGallery g = embed_gallery_in(t.path / "project");
  REQUIRE(g.gallery.rows() > 0);
  CHECK(fs::path(g.gallery.root).is_absolute());
  CHECK(fs::equivalent(g.gallery.root, g.data));
  CHECK(fs::path(g.gallery.image_paths[0]).is_relative());  // the ids file itself is unchanged
  CHECK(read_embeddings(g.prefix.string()).root == g.gallery.root);

  // Neither the working directory nor the ids file's folder holds the images: only the recorded root does.
  InDirectory in(t.path / "elsewhere");
  SearchRequest req;
  req.checkpoint = g.checkpoint.string();
  req.gallery = "../project/out/gal";
  req.images = {g.query_photo};
  req.k = 3;
  SearchOutcome out = search_photos(req);
  CHECK(out.warning.empty());
  CHECK(out.missing_gallery_images == 0);
  CHECK(fs::equivalent(out.gallery_root, g.data));
  for (const PageResult& r : out.queries.at(0).results) CHECK(fs::exists(r.image));

  // A gallery image gone: the warning says how many and names the first.
  const std::string gone = g.gallery.image_paths[1];
  fs::remove(g.data / gone);
  out = search_photos(req);
  CHECK(out.missing_gallery_images == 1);
  CHECK_THAT(out.warning, Catch::Contains("1 of " + std::to_string(g.gallery.rows()) + " gallery images") &&
                              Catch::Contains((g.data / gone).lexically_normal().string()));

  // An older set without gal.root.txt still works where the old guess works (the working directory is the
  // dataset root), and elsewhere warns that the root is not recorded.
  fs::remove(g.prefix.string() + ".root.txt");
  CHECK(read_embeddings(g.prefix.string()).root.empty());
  out = search_photos(req);
  CHECK(out.missing_gallery_images == g.gallery.rows());
  CHECK_THAT(out.warning, Catch::Contains("does not record the dataset root") && Catch::Contains("--gallery-root"));
  {
    InDirectory at_root(g.data);
    req.gallery = (g.prefix).string();
    req.images = {g.query_photo};
    out = search_photos(req);
    CHECK(out.missing_gallery_images == 1);  // only the one removed above
  }

  // Rewriting a set without a root removes a stale root file rather than leave it pointing elsewhere.
  Embeddings e = g.gallery;
  write_embeddings((t.path / "stale").string(), e);
  CHECK(fs::exists(t / "stale.root.txt"));
  e.root.clear();
  write_embeddings((t.path / "stale").string(), e);
  CHECK_FALSE(fs::exists(t / "stale.root.txt"));
  std::ofstream(t / "stale.root.txt") << "\n";
  CHECK_THAT(error_of([&] { read_embeddings((t.path / "stale").string()); }), Catch::Contains("stale.root.txt"));
}

TEST_CASE("search page: gallery images load in chromium when search runs from another folder",
          "[search_page][chromium]") {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    std::printf("SKIPPED: chromium not installed (apt-get install chromium), so the page cannot be rendered\n");
    return;
  }
  TempDir t("render_root");
  const EmbeddedGallery g = embed_gallery_in(t.path / "project");
  InDirectory in(t.path / "elsewhere");
  fs::create_directories("pages");
  SearchRequest req;
  req.checkpoint = g.checkpoint.string();
  req.gallery = "../project/out/gal";
  req.images = {g.query_photo};
  req.k = int(g.gallery.rows());  // every gallery image on the page
  req.html = "pages/search.html";
  SearchOutcome out = search_photos(req);
  CHECK(out.warning.empty());
  const std::string all = "loaded=" + std::to_string(1 + g.gallery.rows()) + " broken=0 first=";
  CHECK(images_loaded_in_chromium(req.html, t.path) == all);  // the query photo and every result

  // One gallery image removed: the page shows exactly that one broken, and search said so.
  const std::string gone = g.gallery.image_paths[0];
  fs::remove(g.data / gone);
  out = search_photos(req);
  CHECK(out.missing_gallery_images == 1);
  CHECK_THAT(out.warning, Catch::Contains(gone));
  const std::string r = images_loaded_in_chromium(req.html, t.path);
  INFO(r);
  CHECK(r.rfind("loaded=" + std::to_string(g.gallery.rows()) + " broken=1 first=", 0) == 0);
  CHECK(r.find(fs::path(gone).filename().string()) != std::string::npos);
}
