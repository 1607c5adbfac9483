// English and Chinese texts of the operations page; the choice is kept in localStorage.
"use strict";
(function () {
  const TEXT = {
    en: {
      "title": "Operations centre", "tab.overview": "Overview", "tab.traffic": "Traffic",
      "tab.environment": "Environment & energy", "tab.scorecard": "2026 scorecard", "tab.audit": "Audit",
      "live.on": "live", "live.off": "reconnecting", "live.connecting": "connecting",
      "auth.signin": "Sign in", "auth.title": "Sign in", "auth.user": "User", "auth.password": "Password",
      "auth.token": "Bearer token", "auth.hint": "Without signing in you see public data only.",
      "auth.cancel": "Cancel", "auth.ok": "Sign in", "auth.signout": "Sign out", "auth.as": "Signed in",
      "map.title": "District map", "kpi.congestion": "Congestion index", "kpi.aqi": "Mean AQI",
      "kpi.power": "Power (kW)", "kpi.sensors": "Sensors online", "kpi.alerts": "Open alerts",
      "chart.congestion": "City congestion index", "chart.air": "Air quality (AQI)",
      "chart.energy": "Energy: active power (kW)", "alerts.title": "Open alerts",
      "alerts.none": "No open alerts", "junctions.title": "Junctions", "scorecard.title": "2026 scorecard",
      "audit.title": "Recent audit events", "audit.none": "The audit ledger is not connected to this hub.",
      "audit.empty": "No audit events yet.", "col.junction": "Junction", "col.phase": "Phase",
      "col.state": "Signal state", "col.indicator": "Indicator", "col.value": "Value", "col.target": "Target",
      "col.status": "Status", "col.time": "Time", "col.event": "Event", "col.detail": "Detail",
      "status.met": "met", "status.notMet": "not met", "status.na": "no data",
      "ind.congestionIndex": "Peak congestion index", "ind.goodAirShare": "Stations with good air (AQI ≤ 100)",
      "ind.sensorAvailability": "Sensor availability", "ind.openHighAlerts": "Open high/critical alerts",
      "legend.roads": "Roads:", "legend.junction": "junction", "legend.sensor": "sensor",
      "legend.alert": "alert", "legend.air": "air station", "legend.request": "citizen request",
      "lvl.smooth": "smooth", "lvl.basicallySmooth": "basically smooth", "lvl.light": "light",
      "lvl.moderate": "moderate", "lvl.severe": "severe",
      "dev.ok": "ok", "dev.silent": "silent", "dev.faulty": "faulty", "dev.revoked": "revoked",
      "sev.informational": "info", "sev.low": "low", "sev.medium": "medium", "sev.high": "high",
      "sev.critical": "critical", "type.RoadSegment": "Road", "type.TrafficSignal": "Junction",
      "type.Device": "Sensor", "type.Alert": "Alert", "type.AirQualityObserved": "Air station",
      "type.EnergyMeter": "Energy meter", "type.ServiceRequest": "Citizen request",
      "denied": "not permitted", "error.load": "could not load",
      "map.waiting": "no roads yet: the district appears with the twin's first report (each simulated minute)",
      "auth.purpose": "Purpose (for data shared under a grant)", "auth.failed": "Unknown user or wrong password.",
      "auth.kind.citizen": "citizen", "auth.kind.staff": "staff", "auth.kind.service": "service", "auth.kind.device": "device",
      "audit.denied": "Audit records are for auditors and stewards.",
      "layer.roads": "roads", "layer.signals": "junctions", "layer.sensors": "sensors", "layer.stations": "air stations",
      "layer.meters": "energy meters", "layer.alerts": "alerts", "layer.indices": "congestion index",
    },
    zh: {
      "title": "城市运行中心", "tab.overview": "总览", "tab.traffic": "交通", "tab.environment": "环境与能源",
      "tab.scorecard": "2026 指标", "tab.audit": "审计", "live.on": "实时", "live.off": "重新连接中",
      "live.connecting": "连接中", "auth.signin": "登录", "auth.title": "登录", "auth.user": "用户名",
      "auth.password": "密码", "auth.token": "访问令牌 (Bearer)", "auth.hint": "未登录时仅显示公开数据。",
      "auth.cancel": "取消", "auth.ok": "登录", "auth.signout": "退出", "auth.as": "已登录",
      "map.title": "片区地图", "kpi.congestion": "拥堵指数", "kpi.aqi": "平均 AQI", "kpi.power": "用电功率 (kW)",
      "kpi.sensors": "在线传感器", "kpi.alerts": "未处理告警", "chart.congestion": "全市拥堵指数",
      "chart.air": "空气质量 (AQI)", "chart.energy": "能源：有功功率 (kW)", "alerts.title": "未处理告警",
      "alerts.none": "暂无未处理告警", "junctions.title": "路口信号", "scorecard.title": "2026 年度指标",
      "audit.title": "最近审计事件", "audit.none": "本平台尚未接入审计账本。", "audit.empty": "暂无审计事件。",
      "col.junction": "路口", "col.phase": "相位", "col.state": "信号状态", "col.indicator": "指标",
      "col.value": "当前值", "col.target": "目标", "col.status": "状态", "col.time": "时间",
      "col.event": "事件", "col.detail": "详情", "status.met": "达标", "status.notMet": "未达标",
      "status.na": "暂无数据", "ind.congestionIndex": "高峰拥堵指数", "ind.goodAirShare": "空气质量良好站点占比 (AQI ≤ 100)",
      "ind.sensorAvailability": "传感器在线率", "ind.openHighAlerts": "未处理高/严重告警",
      "legend.roads": "道路：", "legend.junction": "路口", "legend.sensor": "传感器", "legend.alert": "告警",
      "legend.air": "空气监测站", "legend.request": "市民诉求",
      "lvl.smooth": "畅通", "lvl.basicallySmooth": "基本畅通", "lvl.light": "轻度拥堵",
      "lvl.moderate": "中度拥堵", "lvl.severe": "严重拥堵", "dev.ok": "正常", "dev.silent": "失联",
      "dev.faulty": "故障", "dev.revoked": "已吊销", "sev.informational": "提示", "sev.low": "低",
      "sev.medium": "中", "sev.high": "高", "sev.critical": "严重", "type.RoadSegment": "道路",
      "type.TrafficSignal": "路口", "type.Device": "传感器", "type.Alert": "告警",
      "type.AirQualityObserved": "空气监测站", "type.EnergyMeter": "电表", "type.ServiceRequest": "市民诉求",
      "denied": "无权限", "error.load": "加载失败",
      "map.waiting": "暂无道路数据：孪生体首次上报后（每仿真一分钟）显示街区",
      "auth.purpose": "用途（经授权共享的数据）", "auth.failed": "用户名或密码错误。",
      "auth.kind.citizen": "市民", "auth.kind.staff": "工作人员", "auth.kind.service": "服务账号", "auth.kind.device": "设备",
      "audit.denied": "审计记录仅供审计员和数据管理员查看。",
      "layer.roads": "道路", "layer.signals": "路口", "layer.sensors": "传感器", "layer.stations": "空气监测站",
      "layer.meters": "电表", "layer.alerts": "告警", "layer.indices": "拥堵指数",
    },
  };
  const KEY = "cityhub.lang";
  let lang = localStorage.getItem(KEY) || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
  const listeners = [];

  function t(key) { return (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key; }

  function apply(root) {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.title = t("title") + " · cityhub";
    const button = document.getElementById("lang");
    if (button) button.textContent = lang === "zh" ? "English" : "中文";
  }

  function set(next) {
    lang = next === "zh" ? "zh" : "en";
    localStorage.setItem(KEY, lang);
    apply();
    listeners.forEach((fn) => fn(lang));
  }

  window.i18n = { t, apply, set, get lang() { return lang; }, onChange: (fn) => listeners.push(fn), TEXT };
})();
