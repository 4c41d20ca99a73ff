"""Amenity names in Chinese, shared by every text the server words itself (robot alerts,
monthly reports), so one amenity is never called two things."""

from __future__ import annotations

AMENITIES_ZH = {
    "drinking_water": "饮用水",
    "microwave": "微波炉",
    "phone_charging": "手机充电",
    "ebike_charging": "电动车充电",
    "restroom": "卫生间",
    "rest_seats": "休息座椅",
    "air_conditioning": "空调",
    "heating": "暖气",
    "first_aid": "急救用品",
    "aed": "AED",
    "wifi": "无线网络",
    "lockers": "储物柜",
}
