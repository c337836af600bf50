// The configuration's one field list and one table per choice (fashionnet/model/config.h): the JSON of every
// checkpoint and config.json stays what it was (the same keys, the same strings), a choice is an enum from the
// JSON or command-line boundary on, and the checks name every field out of range.
#include <map>
#include <string>

#include "apps/options.h"
#include "fashionnet/model/config.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;
using namespace fn::fashionnet;

namespace {

// The tiny preset as the engine wrote it before the field list (config.json, checkpoints' metadata), and before
// the stages had `freeze` and `bn_statistics`.
const char* kTinyJson =
    R"({"K":4,"P":2,"batch":8,"bbox_margin":0.0,"checkpoint_every":10,"clip_grad_norm":10.0,"log_every":5,)"
    R"("momentum":0.9,"net":{"attributes":463,"backbone":"vgg16","categories":23,"dropout":0.0,"fc6_global":32,)"
    R"("fc6_local":16,"fc6_pose":16,"fc7_fusion":32,"fc7_pose":16,"input":32,"local_branch":true,)"
    R"("pool_mode":"corner","pool_radius":1,"width":0.0625},"preset":"tiny","schedule":"cosine","seed":1,)"
    R"("stages":[{"lr":0.01,"name":"stage1","steps":20,"weights":{"attributes":1.0,"category":1.0,)"
    R"("landmarks":10.0,"triplet":1.0,"visibility":10.0}},{"lr":0.01,"name":"stage2","steps":20,)"
    R"("weights":{"attributes":1.0,"category":1.0,"landmarks":1.0,"triplet":1.0,"visibility":1.0}}],)"
    R"("step_every":0,"step_gamma":0.1,"triplet_margin":0.20000000298023224,"triplet_mining":"batch_hard",)"
    R"("warmup":0,"weight_decay":0.0})";

// kTinyJson as written now: each stage with its freeze list, batch norm statistics, hold_statistics list and
// lr_mult, at their defaults, validate_every (0: tiny does not validate), the data-parallel parts and ranks (1: one
// process), crop_scale (1: no random crop), label_smoothing (0: off), and net.local_at and net.local_scale
// (the paper's rule, unscaled).
nlohmann::json tiny_json_now() {
  nlohmann::json j = nlohmann::json::parse(kTinyJson);
  j["net"]["local_at"] = "landmarks";
  j["net"]["local_scale"] = 1.0;
  j["validate_every"] = 0;
  j["parts"] = 1;
  j["ranks"] = 1;
  j["crop_scale"] = 1.0;
  j["label_smoothing"] = 0.0;
  for (auto& st : j["stages"]) {
    st["freeze"] = nlohmann::json::array();
    st["bn_statistics"] = "train";
    st["hold_statistics"] = nlohmann::json::array();
    st["lr_mult"] = nlohmann::json::object();
  }
  return j;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const fn::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config: the JSON is the one checkpoints hold, and reads back", "[config]") {
  CHECK(nlohmann::json(preset("tiny")).dump() == tiny_json_now().dump());
  for (const std::string& name : preset_names()) {
    INFO(name);
    const nlohmann::json j = preset(name);
    TrainConfig back;
    j.get_to(back);
    CHECK(nlohmann::json(back) == j);
    CHECK(config_problems(back).empty());
  }
  // An old file: read (the stages' new keys at their defaults), then written again with those keys added.
  TrainConfig c;
  nlohmann::json::parse(kTinyJson).get_to(c);
  CHECK(c.net.pool_mode == PoolMode::Corner);
  CHECK(c.schedule == LrSchedule::Cosine);
  CHECK(c.triplet_mining == TripletMining::BatchHard);
  CHECK(c.net.backbone == Backbone::Vgg16);
  CHECK(c.net.local_at == LocalAt::Landmarks);
  CHECK(c.stages[0].freeze.empty());
  CHECK(c.stages[0].bn_statistics == BnStatistics::Train);
  CHECK(nlohmann::json(c).dump() == tiny_json_now().dump());
}

TEST_CASE("config: a stage's freeze list, batch norm statistics and hold_statistics list", "[config]") {
  CHECK(choice_names<BnStatistics>() == std::vector<std::string>{"train", "frozen"});
  TrainConfig c = preset("resnet-tiny");
  // The stage of docs/training.md: the trunk frozen, every batch norm's statistics held.
  nlohmann::json::parse(R"({"stages": [{"name": "heads", "steps": 200, "lr": 0.01, "freeze": ["trunk"],
                                        "bn_statistics": "frozen"},
                                       {"name": "all", "steps": 400, "hold_statistics": ["conv5_global"]}]})")
      .get_to(c);
  REQUIRE(c.stages.size() == 2);
  CHECK(c.stages[0].freeze == std::vector<std::string>{"trunk"});
  CHECK(c.stages[0].bn_statistics == BnStatistics::Frozen);
  CHECK(c.stages[1].freeze.empty());  // StageConfig's defaults: nothing frozen, statistics trained
  CHECK(c.stages[1].bn_statistics == BnStatistics::Train);
  CHECK(c.stages[0].hold_statistics.empty());
  CHECK(c.stages[1].hold_statistics == std::vector<std::string>{"conv5_global"});
  CHECK(config_problems(c).empty());
  const nlohmann::json j = c;
  CHECK(j["stages"][0]["freeze"] == nlohmann::json::array({"trunk"}));
  CHECK(j["stages"][0]["bn_statistics"] == "frozen");
  CHECK(j["stages"][1]["hold_statistics"] == nlohmann::json::array({"conv5_global"}));
  CHECK(nlohmann::json(j.get<TrainConfig>()) == j);
  for (const std::string& name : preset_names()) {  // no preset freezes: a stage says so when it should
    INFO(name);
    for (const StageConfig& st : preset(name).stages) {
      CHECK(st.freeze.empty());
      CHECK(st.bn_statistics == BnStatistics::Train);
      // lite0 holds the global branch's ImageNet statistics (config.cpp, preset())
      CHECK(st.hold_statistics == (name == "lite0" ? std::vector<std::string>{"conv5_global"} : std::vector<std::string>{}));
    }
  }

  c.stages[0].freeze = {"trunk", ""};
  c.stages[1].bn_statistics = "fixed";
  c.stages[1].hold_statistics = {""};
  CHECK(config_problems(c) ==
        std::vector<std::string>{"stages[0].freeze[1]: an empty name (it would freeze every parameter)",
                                 "stages[1].bn_statistics 'fixed': train or frozen",
                                 "stages[1].hold_statistics[0]: an empty name (bn_statistics 'frozen' holds every "
                                 "batch norm)"});
}

TEST_CASE("config: a stage's learning-rate multipliers", "[config]") {
  TrainConfig c = preset("lite0");
  for (const StageConfig& st : c.stages) CHECK(st.lr_mult.empty());
  nlohmann::json::parse(R"({"stages": [{"name": "s", "steps": 10, "lr_mult": {"landmark_vis": 3, "fc7_pose": 0.5}}]})")
      .get_to(c);
  REQUIRE(c.stages.size() == 1);
  CHECK(c.stages[0].lr_mult == std::map<std::string, double>{{"fc7_pose", 0.5}, {"landmark_vis", 3.0}});
  CHECK(config_problems(c).empty());
  const nlohmann::json j = c;
  CHECK(j["stages"][0]["lr_mult"] == nlohmann::json::parse(R"({"fc7_pose": 0.5, "landmark_vis": 3.0})"));
  CHECK(nlohmann::json(j.get<TrainConfig>()) == j);
  c.stages[0].lr_mult = {{"", 2.0}, {"fc7_pose", 0.0}, {"landmark_vis", 1e4}};
  CHECK(config_problems(c) ==
        std::vector<std::string>{"stages[0].lr_mult: an empty name (it would cover every parameter)",
                                 "stages[0].lr_mult[\"fc7_pose\"] 0: from 1e-6 to 1000 (freeze a module to stop it)",
                                 "stages[0].lr_mult[\"landmark_vis\"] 10000: from 1e-6 to 1000 (freeze a module to "
                                 "stop it)"});
}

TEST_CASE("config: a choice is an enum, named by one table", "[config]") {
  CHECK(choice_names<PoolMode>() == std::vector<std::string>{"corner", "zero"});
  CHECK(choice_names<TripletMining>() == std::vector<std::string>{"batch_hard", "all"});
  CHECK(choice_names<LrSchedule>() == std::vector<std::string>{"cosine", "step"});
  CHECK(choice_names<Backbone>() == std::vector<std::string>{"vgg16", "resnet50", "efficientnet_lite0"});
  CHECK(choice_names_text<PoolMode>() == "corner or zero");
  // The kernels' own enums.
  CHECK(parse_choice<PoolMode>("zero") == kernels::LandmarkPoolMode::Zero);
  CHECK(parse_choice<TripletMining>("all") == kernels::TripletMode::BatchAll);
  CHECK(!parse_choice<TripletMining>("batch-hard").has_value());

  TrainConfig c = preset("tiny");
  c.net.pool_mode = "zero";
  c.triplet_mining = TripletMining::BatchAll;
  c.schedule = std::string("step");
  CHECK(c.net.pool_mode == PoolMode::Zero);
  kernels::TripletMode mode = c.triplet_mining;  // where a kernel takes it
  CHECK(mode == kernels::TripletMode::BatchAll);
  nlohmann::json j = c;
  CHECK(j["net"]["pool_mode"] == "zero");
  CHECK(j["triplet_mining"] == "all");
  CHECK(j["schedule"] == "step");
  CHECK(choice_names<LocalAt>() == std::vector<std::string>{"landmarks", "layout", "absent"});
  CHECK(nlohmann::json::parse(R"({"local_at": "layout"})").get<NetConfig>().local_at == LocalAt::Layout);

  // A name not in the table is kept as written: check_config names it, to_json writes it back.
  c.net.pool_mode = "middle";
  CHECK(!c.net.pool_mode.known());
  CHECK(c.net.pool_mode != PoolMode::Corner);
  CHECK(nlohmann::json(c)["net"]["pool_mode"] == "middle");
  CHECK(config_problems(c) == std::vector<std::string>{"net.pool_mode 'middle': corner or zero"});
  c.net.local_at = "grid";
  CHECK(config_problems(c) == std::vector<std::string>{"net.pool_mode 'middle': corner or zero",
                                                      "net.local_at 'grid': landmarks or layout or absent"});
  c.net.local_at = LocalAt::Landmarks;
  CHECK_THROWS_WITH(PoolMode(c.net.pool_mode), Catch::Contains("used unchecked"));  // an internal error
  // A choice that is not a string is json's type error.
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"pool_mode": 1})").get<NetConfig>(), Catch::Contains("must be string"));
}

TEST_CASE("config: the backbone presets", "[config]") {
  const TrainConfig lite0 = preset("lite0"), r50 = preset("resnet50"), rtiny = preset("resnet-tiny");
  CHECK(lite0.net.backbone == Backbone::EfficientNetLite0);
  CHECK(lite0.net.width == 1.0);  // the ImageNet weights' widths
  CHECK(lite0.net.input % 16 == 0);
  CHECK(lite0.net.local_scale == 0.1f);  // the ImageNet map's scale (config.cpp)
  CHECK(r50.net.local_scale == 1.f);
  CHECK(r50.net.backbone == Backbone::ResNet50);
  CHECK(r50.net.width == 1.0);
  CHECK(r50.net.input == 224);
  CHECK(rtiny.net.backbone == Backbone::ResNet50);
  CHECK(rtiny.preset == "resnet-tiny");
  CHECK(rtiny.net.width < 1.0);
  // The backbone's name is what config.json holds, and reads back.
  const nlohmann::json j = lite0;
  CHECK(j["net"]["backbone"] == "efficientnet_lite0");
  CHECK(nlohmann::json(r50)["net"]["backbone"] == "resnet50");
  CHECK(j.get<TrainConfig>().net.backbone == Backbone::EfficientNetLite0);
  CHECK(parse_choice<Backbone>("resnet50") == Backbone::ResNet50);
}

TEST_CASE("config: missing keys keep their values, integers refuse fractions and overflow", "[config]") {
  TrainConfig c = preset("cpu-small");
  nlohmann::json::parse(R"({"batch": 4, "net": {"width": 0.5}, "stages": [{"name": "only", "lr": 0.5}]})").get_to(c);
  CHECK(c.batch == 4);
  CHECK(c.P == 4);                  // the preset's
  CHECK(c.net.width == 0.5);
  CHECK(c.net.input == 112);        // the preset's: a nested object is read into the current one
  REQUIRE(c.stages.size() == 1);    // a list is replaced, its elements start from StageConfig's defaults
  CHECK(c.stages[0].steps == 0);
  CHECK(c.stages[0].weights.landmarks == 1);
  CHECK(c.stages[0].lr == 0.5);

  auto read = [](const char* text) {
    return error_of([&] {
      TrainConfig t;
      nlohmann::json::parse(text).get_to(t);
    });
  };
  reload_error_location();
  CHECK(read(R"({"batch": 16.7})") == "'batch' is 16.7: a whole number expected");
  CHECK(read(R"({"batch": 4294967297})") == "'batch' is 4294967297: out of range for its type");
  CHECK(read(R"({"seed": -1})") == "'seed' is -1: out of range for its type");
  CHECK(read(R"({"stages": [{"steps": 1.5}]})") == "'steps' is 1.5: a whole number expected");
  CHECK(read(R"({"batch": 16.0})").empty());
}

TEST_CASE("config: the checks name every field out of its range", "[config]") {
  TrainConfig c = preset("tiny");
  c.net.backbone = "resnet";
  c.net.width = 0;
  c.net.input = 30;
  c.net.dropout = 1.f;
  c.batch = 0;
  c.momentum = std::nan("");
  c.schedule = "linear";
  c.triplet_mining = "";
  c.log_every = 0;
  c.crop_scale = 0.f;
  c.stages.push_back({});
  c.stages[0].weights.triplet = -1;
  const std::vector<std::string> want = {"net.backbone 'resnet': vgg16 or resnet50 or efficientnet_lite0",
                                         "net.width 0: from 0.001 to 8",
                                         "net.input 30: a multiple of 8 from 32 to 2048",
                                         "net.dropout 1: from 0 to 0.99",
                                         "batch 0: from 1 to 65536",
                                         "momentum nan: from 0 to 0.999",
                                         "schedule 'linear': cosine or step",
                                         "triplet_mining '': batch_hard or all",
                                         "log_every 0: positive",
                                         "crop_scale 0: from 0.05 to 1 (1: off)",
                                         "stages[0].weights.triplet -1: from 0 to 1e6",
                                         "stages[2].name: empty"};
  CHECK(config_problems(c) == want);
  CHECK(config_problems(c.net) == std::vector<std::string>{"backbone 'resnet': vgg16 or resnet50 or efficientnet_lite0",
                                                           "width 0: from 0.001 to 8",
                                                           "input 30: a multiple of 8 from 32 to 2048",
                                                           "dropout 1: from 0 to 0.99"});
  c.stages.clear();
  CHECK(config_problems(c).back() == "stages: none (at least one)");
  // User errors: the message, no source location.
  reload_error_location();
  CHECK(error_of([&] { check_config(c, "--config x.json"); }).rfind("--config x.json: invalid configuration: net.backbone", 0) == 0);
  CHECK(error_of([&] { check_config(c, "--config x.json"); }).find("[") == std::string::npos);
  CHECK(error_of([] { preset("huge"); }) == "unknown preset 'huge' (expected paper, cpu-small, tiny, lite0, resnet50 or resnet-tiny)");
}

TEST_CASE("config: the command line's --pool-mode takes the table's names", "[config]") {
  CLI::App app;
  apps::TrainFlags f;
  apps::add_train_flags(app, f);
  const char* ok[] = {"t", "--preset", "tiny", "--pool-mode", "zero"};
  app.parse(5, ok);
  CHECK(apps::make_config(f).net.pool_mode == PoolMode::Zero);
  CLI::App app2;
  apps::TrainFlags g;
  apps::add_train_flags(app2, g);
  const char* bad[] = {"t", "--pool-mode", "middle"};
  CHECK_THROWS_AS(app2.parse(3, bad), CLI::ValidationError);
}
