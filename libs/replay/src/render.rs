//! The answers, in each source's real format (see `services/ingest/tests/fixtures` for recorded shapes).

use serde_json::{Value, json};

use crate::{Fault, WorldState};

/// The data.go.kr gateway's quota answer, sent with HTTP 200 even when JSON was requested.
pub const QUOTA_XML: &str = "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>\
<returnAuthMsg>LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR</returnAuthMsg>\
<returnReasonCode>22</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A region page; without `with_rows` the table is there but empty.
pub fn region_page(state: &WorldState, region: u8, with_rows: bool) -> String {
    let mut rows = String::new();
    for lot in state.lots.iter().filter(|lot| lot.region == region && with_rows) {
        let available = lot.available.map_or_else(|| "-".to_owned(), thousands);
        rows.push_str(&format!(
            "<tr><td><span>{}</span></td><td><span>{}</span></td>\n<td><button type=\"button\" class=\"btn-route\">길찾기</button></td>\n\
             <td><span class=\"highlight-blue bold\">{available}</span></td><td><span>{}</span></td><td><span>-</span></td></tr>\n",
            escape(&lot.name),
            escape(&lot.address),
            thousands(lot.capacity),
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>한강공원 통합주차포털</title></head><body>\n\
         <table class=\"table\"><thead><tr><th>주차장명</th><th>주소</th><th>길찾기</th><th>주차가능대수(가용)</th>\
         <th>주차구획수(계)(총)</th><th>면적(m²)</th></tr></thead><tbody>\n{rows}</tbody></table></body></html>\n"
    )
}

pub fn no_data() -> Value {
    json!({"RESULT": {"RESULT.CODE": "INFO-200", "RESULT.MESSAGE": "해당하는 데이터가 없습니다."}})
}

pub fn citydata(state: &WorldState, area_name: &str) -> String {
    let Some(area) = state.areas.get(area_name).filter(|area| !area.no_data) else {
        return no_data().to_string();
    };
    let (min, max) = area.population;
    let hour = |offset: u32, level: &str| {
        json!({"FCST_TIME": later(&area.observed_kst, offset), "FCST_CONGEST_LVL": level,
               "FCST_PPLTN_MIN": (min + offset * 1_000).to_string(), "FCST_PPLTN_MAX": (max + offset * 1_000).to_string()})
    };
    json!({
        "list_total_count": 1,
        "RESULT": {"RESULT.CODE": "INFO-000", "RESULT.MESSAGE": "정상 처리되었습니다."},
        "CITYDATA": {
            "AREA_NM": area_name,
            "LIVE_PPLTN_STTS": [{
                "AREA_NM": area_name,
                "AREA_CONGEST_LVL": area.level_ko,
                "AREA_CONGEST_MSG": area.message_ko,
                "AREA_PPLTN_MIN": min.to_string(),
                "AREA_PPLTN_MAX": max.to_string(),
                "REPLACE_YN": "N",
                "PPLTN_TIME": area.observed_kst,
                "FCST_YN": "Y",
                "FCST_PPLTN": [hour(1, &area.level_ko), hour(2, &area.level_ko)],
            }],
            "LIVE_CMRCL_STTS": null,
            "WEATHER_STTS": [{
                "WEATHER_TIME": area.observed_kst,
                "TEMP": format!("{:.1}", area.temperature_c),
                "PRECPT_TYPE": area.precipitation_ko,
                "PM10": "31",
                "PM25": "15",
                "FCST24HOURS": [{"FCST_DT": compact(&later(&area.observed_kst, 1)), "RAIN_CHANCE": area.rain_chance.to_string(), "SKY_STTS": area.sky_ko}],
            }],
            "EVENT_STTS": [],
        }
    })
    .to_string()
}

/// `YYYY-MM-DD HH:MM` plus `hours`, on the hour.
fn later(kst: &str, hours: u32) -> String {
    let Ok(at) = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", kst) else {
        return kst.to_owned();
    };
    let next = at.checked_add(jiff::Span::new().hours(i64::from(hours))).unwrap_or(at);
    next.strftime("%Y-%m-%d %H:00").to_string()
}

fn compact(kst: &str) -> String {
    kst.chars().filter(char::is_ascii_digit).collect()
}

/// One page of `culturalEventInfo`, shaped by the faults that change its content.
pub fn cultural_events(
    state: &WorldState,
    start: usize,
    end: usize,
    fault: Option<&Fault>,
) -> String {
    if state.events.is_empty() || fault == Some(&Fault::NoData) {
        return json!({"RESULT": {"CODE": "INFO-200", "MESSAGE": "해당하는 데이터가 없습니다."}})
            .to_string();
    }
    let mut page: Vec<_> = state
        .events
        .iter()
        .skip(start.saturating_sub(1))
        .take(end.saturating_sub(start) + 1)
        .collect();
    match fault {
        Some(Fault::EmptyRows) => page.clear(),
        Some(Fault::ShortPage) => {
            page.pop();
        }
        _ => {}
    }
    let total = match fault {
        Some(Fault::TotalDrift(drift)) if start > 1 => {
            (state.events.len() as i64 + i64::from(*drift)).max(0) as usize
        }
        _ => state.events.len(),
    };
    let rows: Vec<Value> = page
        .into_iter()
        .map(|event| {
            let link = state.event_links.get(&event.title).map_or("", String::as_str);
            json!({"CODENAME": "축제-문화/예술", "GUNAME": "", "TITLE": event.title, "DATE": format!("{}~{}", event.starts_on, event.ends_on),
                   "PLACE": event.place, "ORG_LINK": link, "STRTDATE": format!("{} 00:00:00.0", event.starts_on),
                   "END_DATE": format!("{} 00:00:00.0", event.ends_on), "LAT": "", "LOT": "",
                   "IS_FREE": if event.free { "무료" } else { "유료" }, "HMPG_ADDR": ""})
        })
        .collect();
    json!({"culturalEventInfo": {"list_total_count": total,
           "RESULT": {"CODE": "INFO-000", "MESSAGE": "정상 처리되었습니다"}, "row": rows}})
    .to_string()
}

pub fn kma(state: &WorldState, nx: &str, ny: &str) -> String {
    let (base_date, base_time) = &state.kma_base;
    let base = format!("{base_date}{base_time}");
    let temperature = state.areas.values().next().map_or(22.0, |area| area.temperature_c);
    let Ok(start) = jiff::civil::DateTime::strptime("%Y%m%d%H%M", &base) else {
        return json!({"response": {"header": {"resultCode": "03", "resultMsg": "NODATA_ERROR"}}})
            .to_string();
    };
    let mut items = Vec::new();
    for hour in 1..=12 {
        let at = start.checked_add(jiff::Span::new().hours(hour)).unwrap_or(start);
        let (date, time) = (at.strftime("%Y%m%d").to_string(), at.strftime("%H00").to_string());
        for (category, value) in [
            ("TMP", format!("{temperature:.0}")),
            ("SKY", "3".into()),
            ("PTY", "0".into()),
            ("POP", "20".into()),
        ] {
            items.push(json!({"baseDate": base_date, "baseTime": base_time, "category": category, "fcstDate": date,
                              "fcstTime": time, "fcstValue": value, "nx": nx.parse::<i32>().unwrap_or(0), "ny": ny.parse::<i32>().unwrap_or(0)}));
        }
    }
    json!({"response": {"header": {"resultCode": "00", "resultMsg": "NORMAL_SERVICE"},
           "body": {"dataType": "JSON", "items": {"item": items}, "pageNo": 1, "numOfRows": 1000, "totalCount": items.len()}}})
    .to_string()
}

pub fn notice_board(state: &WorldState, fault: Option<&Fault>) -> String {
    let row = |id: u32, href: &str, title: &str, date: &str| {
        format!(
            "<tr><td>{id}</td><td class=\"subject\"><a href=\"{}\">{}</a></td><td>{date}</td><td>0</td></tr>\n",
            href.replace('"', "&quot;"),
            escape(title),
        )
    };
    let mut rows: String = state
        .notices
        .iter()
        .map(|entry| {
            let href = state.notice_links.get(&entry.id).cloned();
            let href = href.unwrap_or_else(|| format!("/notices/view?id={}", entry.id));
            row(entry.id, &href, &entry.title, &entry.date)
        })
        .collect();
    if let Some(Fault::ManyRows(extra)) = fault {
        for n in 0..*extra {
            rows.push_str(&row(9_000_000 + n, "/notices/view", &format!("공고 {n}"), "2026-01-01"));
        }
    }
    let depth = match fault {
        Some(Fault::Nested(depth)) => *depth as usize,
        _ => 0,
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\"><title>공지사항</title></head><body>\n{}\
         <table class=\"board-list\"><thead><tr><th>번호</th><th>제목</th><th>작성일</th><th>조회</th></tr></thead>\
         <tbody>\n{rows}</tbody></table>{}</body></html>\n",
        "<div>".repeat(depth),
        "</div>".repeat(depth),
    )
}
