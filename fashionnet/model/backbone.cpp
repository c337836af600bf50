#include "fashionnet/model/backbone.h"

#include "fashionnet/model/efficientnet_lite0.h"
#include "fashionnet/model/resnet50.h"
#include "fashionnet/model/vgg16_backbone.h"

namespace fn::fashionnet {

BackboneParts make_backbone(const NetConfig& cfg, Rng& rng) {
  BackboneParts p;
  switch (cfg.backbone.value()) {
    case Backbone::Vgg16:
      p.trunk = std::make_unique<Vgg16Trunk>(cfg.width, rng);
      p.global = std::make_unique<Vgg16Conv5>(cfg.width, cfg.input, rng);
      p.pose = std::make_unique<Vgg16Conv5>(cfg.width, cfg.input, rng);
      break;
    case Backbone::ResNet50:
      p.trunk = std::make_unique<ResNet50Trunk>(cfg.width, rng);
      p.global = std::make_unique<ResNet50Branch>(cfg.width, rng);
      p.pose = std::make_unique<ResNet50Branch>(cfg.width, rng);
      break;
    case Backbone::EfficientNetLite0:
      p.trunk = std::make_unique<Lite0Trunk>(cfg.width, rng);
      p.global = std::make_unique<Lite0Branch>(cfg.width, rng);
      p.pose = std::make_unique<Lite0Branch>(cfg.width, rng);
      break;
  }
  FN_CHECK(p.trunk && p.global && p.pose, "make_backbone: backbone '", cfg.backbone.name(), "' not built");
  return p;
}

}  // namespace fn::fashionnet
